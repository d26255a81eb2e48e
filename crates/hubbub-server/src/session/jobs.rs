//! `algorithm_start` and `algorithm_stop`: the hub's part of them (module
//! `crate::jobs`); what a job is belongs to the registered handler.

use hubbub_protocol::message::{AlgorithmStart, AlgorithmStop};
use hubbub_protocol::{CorrelationId, ErrorCode, ServerMessage};

use super::Session;
use crate::jobs::JobCaller;
use crate::metrics::Metrics;

type Failure = (ErrorCode, String);

impl Session {
    fn job_caller(&self) -> JobCaller {
        JobCaller::connection(
            &self.shared,
            self.claims.as_deref(),
            self.handle.user_id.as_deref(),
            self.shared.conns.connection_id(self.handle.seq),
        )
    }

    fn job_handler(&self, command: &str) -> Result<std::sync::Arc<dyn crate::JobHandler>, Failure> {
        self.shared.jobs.handler().ok_or_else(|| {
            (
                ErrorCode::Unavailable,
                format!("{command} is not offered by this hub"),
            )
        })
    }

    /// `algorithm_start`: the handler prepares the job; the requester is
    /// subscribed to its channel and gets `algorithm_started` before the
    /// job's first event, which it sees because the job starts only then.
    pub(super) async fn start_job(
        &mut self,
        a: AlgorithmStart,
        id: Option<&CorrelationId>,
    ) -> Result<(), Failure> {
        let handler = self.job_handler("algorithm_start")?;
        let max = self.shared.config.connection.max_subscriptions;
        if self.handle.subscriptions.lock().len() >= max {
            Metrics::inc(&self.shared.metrics.subscription_limit);
            return Err((
                ErrorCode::LimitExceeded,
                format!("at most {max} subscriptions per connection, and a job's channel is one"),
            ));
        }
        let job = handler
            .start(self.job_caller(), a.algorithm, a.parameters)
            .await
            .map_err(|e| (e.code, e.message))?;
        self.register_syncing(&job.channel, None);
        let read = match self.shared.open_channel(&job.channel, None).await {
            Ok(r) => r,
            Err(e) => {
                self.unregister(&job.channel);
                Metrics::inc(&self.shared.metrics.engine_errors);
                tracing::warn!(error = %e, channel = %job.channel, "engine failed during algorithm_start");
                return Err((
                    ErrorCode::Unavailable,
                    "the job's channel could not be subscribed; try again".into(),
                ));
            }
        };
        let reply = ServerMessage::AlgorithmStarted {
            job_id: job.job_id,
            channel: job.channel.clone(),
        };
        self.reply_ahead(&reply, id, []);
        self.release(&job.channel, &read.top);
        (job.start)();
        Ok(())
    }

    /// `algorithm_stop`.
    pub(super) async fn stop_job(&mut self, s: AlgorithmStop) -> Result<ServerMessage, Failure> {
        let handler = self.job_handler("algorithm_stop")?;
        handler
            .stop(self.job_caller(), s.job_id.clone())
            .await
            .map_err(|e| (e.code, e.message))?;
        Ok(ServerMessage::AlgorithmStopped { job_id: s.job_id })
    }
}
