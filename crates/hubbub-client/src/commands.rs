//! The rest of the protocol's commands on [`Client`]: presence, history,
//! rooms, RPC, graph jobs and token refresh, each returning its reply typed.

use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters};
use hubbub_protocol::message::{
    AlgorithmStart, AlgorithmStop, Auth, ChannelOnly, Command, Empty, History, JoinRoom, LeaveRoom,
    Rpc,
};
use hubbub_protocol::rooms::{room_channel, PresenceEntry, PresenceStats};
use hubbub_protocol::ServerMessage;
use serde::Serialize;

use crate::client::{to_data, unexpected, HistoryPage};
use crate::conn::Kind;
use crate::subscription::{Job, Room};
use crate::{Client, Error};

impl Client {
    /// This connection's channels, as the hub lists them.
    pub async fn subscriptions(&self) -> Result<Vec<String>, Error> {
        match self.plain(Command::GetSubscriptions(Empty {})).await? {
            ServerMessage::Subscriptions { channels } => Ok(channels),
            other => Err(unexpected(other)),
        }
    }

    /// Members of a presence-enabled channel (`room:<room>` for rooms).
    pub async fn presence(&self, channel: &str) -> Result<Vec<PresenceEntry>, Error> {
        let cmd = Command::Presence(ChannelOnly {
            channel: channel.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::Presence { members, .. } => Ok(members),
            other => Err(unexpected(other)),
        }
    }

    /// Member counts of a presence-enabled channel.
    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, Error> {
        let cmd = Command::PresenceStats(ChannelOnly {
            channel: channel.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::PresenceStats {
                num_clients,
                num_users,
                ..
            } => Ok(PresenceStats {
                num_clients,
                num_users,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// A channel's retained events: after `since_offset` (exclusive) or the
    /// newest, at most `limit`.
    pub async fn history(
        &self,
        channel: &str,
        since_offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<HistoryPage, Error> {
        let cmd = Command::History(History {
            channel: channel.to_owned(),
            since_offset,
            limit,
        });
        match self.plain(cmd).await? {
            ServerMessage::History {
                epoch,
                offset,
                events,
                ..
            } => Ok(HistoryPage {
                epoch,
                offset,
                events,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Joins a room with an optional presence `info` object; rejoined with
    /// the same `info` after every reconnect.
    pub async fn join_room<T: Serialize + ?Sized>(
        &self,
        room: &str,
        info: Option<&T>,
    ) -> Result<Room, Error> {
        let info = info.map(to_data).transpose()?;
        let (sink, events) = self.sink(&room_channel(room));
        let cmd = Command::JoinRoom(JoinRoom {
            room: room.to_owned(),
            info: info.clone(),
        });
        let kind = Kind::Join {
            room: room.to_owned(),
            info,
            sink,
        };
        match self.request(cmd, kind).await? {
            ServerMessage::RoomJoined { room, members } => Ok(Room {
                name: room,
                members,
                events,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Leaves a room (dropping its [`Room`] does too, without waiting); its
    /// subscription ends and the room is not rejoined after a reconnect.
    pub async fn leave_room(&self, room: &str) -> Result<(), Error> {
        let cmd = Command::LeaveRoom(LeaveRoom {
            room: room.to_owned(),
        });
        let kind = Kind::Leave {
            channel: room_channel(room),
        };
        match self.request(cmd, kind).await? {
            ServerMessage::RoomLeft { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Calls an application-defined method; its answer as JSON.
    pub async fn rpc<T: Serialize + ?Sized>(
        &self,
        method: &str,
        data: &T,
    ) -> Result<serde_json::Value, Error> {
        let cmd = Command::Rpc(Rpc {
            method: method.to_owned(),
            data: to_data(data)?,
        });
        match self.plain(cmd).await? {
            ServerMessage::RpcResult { data } => Ok(data.to_value()),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a graph-algorithm job; its events follow on the [`Job`].
    pub async fn start_job(
        &self,
        algorithm: &Algorithm,
        parameters: &AlgorithmParameters,
    ) -> Result<Job, Error> {
        let cmd = Command::AlgorithmStart(AlgorithmStart::new(algorithm, parameters));
        // The sink's channel name is known only from the reply.
        let (sink, mut sub) = self.sink("");
        match self.request(cmd, Kind::Start { sink }).await? {
            ServerMessage::AlgorithmStarted { job_id, channel } => {
                sub.channel = channel.clone();
                Ok(Job {
                    id: job_id,
                    channel,
                    sub,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Stops a job.
    pub async fn stop_job(&self, job_id: &str) -> Result<(), Error> {
        let cmd = Command::AlgorithmStop(AlgorithmStop {
            job_id: job_id.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::AlgorithmStopped { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Swaps in a fresh token on the live connection; its expiry (ms).
    pub async fn auth(&self, token: &str) -> Result<Option<u64>, Error> {
        let cmd = Command::Auth(Auth {
            token: token.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::Authenticated { expires_at, .. } => Ok(expires_at),
            other => Err(unexpected(other)),
        }
    }
}
