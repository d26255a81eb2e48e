//! The subscribe and publish hooks, asked from the commands that need
//! them (docs/hooks.md). Nothing is asked, cloned or allocated when no
//! hook of the kind is set.

use hubbub_protocol::{ErrorCode, JsonData};

use super::Session;
use crate::hooks::{HookKind, Info, PublishRequest, SubscribeRequest};

type Failure = (ErrorCode, String);

impl Session {
    /// The subscribe hook's decision for each of `channels` (asked all at
    /// once, so a `subscribe` of several channels waits one timeout at
    /// most): the info each attaches, in the same order (empty when no
    /// hook is set), or the first refusal. The connection's own
    /// `user:<id>` is never asked about: it is the user's by right.
    ///
    /// Boxed, and only when a hook is set: the state of the asking would
    /// otherwise enlarge every command's future, hooked or not (each
    /// command's future is allocated; measured as idle RSS per connection).
    pub(super) async fn ask_subscribe(
        &self,
        channels: &[&String],
    ) -> Result<Vec<Option<Info>>, Failure> {
        if !self.shared.hooks.armed(HookKind::Subscribe) {
            return Ok(Vec::new());
        }
        Box::pin(self.ask_subscribe_hook(channels)).await
    }

    async fn ask_subscribe_hook(&self, channels: &[&String]) -> Result<Vec<Option<Info>>, Failure> {
        let user_id = self.handle.user_id.as_deref();
        let own = user_id.map(|u| format!("user:{u}"));
        let connection_id = self.shared.conns.connection_id(self.handle.seq);
        let asks = channels.iter().map(|ch| {
            let req = SubscribeRequest {
                connection_id: connection_id.clone(),
                user_id: user_id.map(str::to_owned),
                channel: ch.to_string(),
            };
            let own = own.as_deref() == Some(ch.as_str());
            async move {
                if own {
                    return Ok(None);
                }
                crate::hooks::run::subscribe(&self.shared, req).await
            }
        });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .collect()
    }

    /// The publish hook's decision: the data to publish (the client's, or
    /// what the hook put in its place), or the refusal. Boxed, as above.
    pub(super) async fn ask_publish(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
    ) -> Result<JsonData, Failure> {
        if !self.shared.hooks.armed(HookKind::Publish) {
            return Ok(data);
        }
        Box::pin(self.ask_publish_hook(channel, event_type, data)).await
    }

    async fn ask_publish_hook(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
    ) -> Result<JsonData, Failure> {
        let req = PublishRequest {
            connection_id: self.shared.conns.connection_id(self.handle.seq),
            user_id: self.handle.user_id.as_deref().map(str::to_owned),
            channel: channel.to_owned(),
            event_type: event_type.to_owned(),
            data: data.clone(),
        };
        Ok(crate::hooks::run::publish(&self.shared, req)
            .await?
            .unwrap_or(data))
    }
}
