//! The engine's one error type.

use event_store::Position;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The checkpoint is beyond the end of the log: the log lost its tail
    /// (restored from an older backup, or the wrong stream). Applying on
    /// would silently skip events, so the projection stops.
    #[error(
        "projection {projection} is at position {checkpoint} but the event log ends at {head}: \
         the log lost its tail (wrong stream, or restored from an older backup). \
         Not continuing; rebuild the projection once the log is right"
    )]
    LogLostTail {
        projection: String,
        checkpoint: Position,
        head: Position,
    },

    #[error("database: {}", careline_pg::describe_error(.0))]
    Database(#[from] tokio_postgres::Error),

    #[error("database pool: {0}")]
    Pool(String),

    #[error("migrations of {projection}: {message}")]
    Migration { projection: String, message: String },

    #[error(transparent)]
    Log(#[from] event_store::Error),

    /// A projection could not apply an event (a defect, or an event it
    /// cannot make sense of): the projection stops at that position.
    #[error("projection {projection} cannot apply the event at position {position}: {message}")]
    Apply {
        projection: String,
        position: Position,
        message: String,
    },

    #[error("the event feed of {0} ended")]
    FeedEnded(String),

    #[error("bad projection setup: {0}")]
    Config(String),
}

impl From<careline_pg::Error> for Error {
    fn from(e: careline_pg::Error) -> Self {
        match e {
            careline_pg::Error::Database(e) => Self::Database(e),
            careline_pg::Error::Pool(why) => Self::Pool(why),
            careline_pg::Error::Migration {
                projection,
                message,
            } => Self::Migration {
                projection,
                message,
            },
            careline_pg::Error::Config(why) => Self::Config(why),
        }
    }
}
