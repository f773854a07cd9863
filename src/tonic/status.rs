//! Cancellations and refusals as gRPC statuses, and back.

use ::tonic::metadata::{MetadataMap, MetadataValue};
use ::tonic::{Code, Status};

use crate::cancel::{CancelReason, Cancelled};
use crate::remote::Refusal;

/// The status a call stopped by a cancellation ends with:
/// `DEADLINE_EXCEEDED` for a timeout or deadline, `CANCELLED` otherwise;
/// its message is the reason, and the `x-cancel-reason` metadata
/// ([`CancelReason::WIRE_HEADER`]) says which.
///
/// ```
/// use taskscope::{CancelReason, Cancelled};
///
/// let status = tonic::Status::from(Cancelled::new(CancelReason::RemoteDeadline));
/// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
/// let back = Cancelled::from_status(&status).unwrap();
/// assert_eq!(back.reason(), &CancelReason::RemoteDeadline);
/// ```
impl From<Cancelled> for Status {
    fn from(cancelled: Cancelled) -> Status {
        status_for(cancelled.reason())
    }
}

/// A [`Refusal`] as a gRPC status: `INVALID_ARGUMENT` for a malformed
/// `grpc-timeout`, `DEADLINE_EXCEEDED` when a deadline passed, `UNAVAILABLE`
/// while shutting down, `INTERNAL` when a task failed; a deadline's or a
/// shutdown's reason in `x-cancel-reason`.
///
/// ```
/// use taskscope::{remote::Refusal, CancelReason};
///
/// let status = tonic::Status::from(Refusal::Expired(CancelReason::RemoteDeadline));
/// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
/// assert_eq!(status.metadata().get(CancelReason::WIRE_HEADER).unwrap(), "deadline");
/// assert_eq!(tonic::Status::from(Refusal::Closed).code(), tonic::Code::Unavailable);
/// ```
impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match &refusal {
            Refusal::Malformed { .. } => Status::invalid_argument(refusal.to_string()),
            Refusal::Expired(reason) => status_for(reason),
            Refusal::Closed => with_reason(
                Code::Unavailable,
                "the server is shutting down",
                &CancelReason::Shutdown,
            ),
            Refusal::Failed => Status::internal("the call failed"),
        }
    }
}

/// `DEADLINE_EXCEEDED` for a timeout or deadline, `CANCELLED` otherwise.
fn status_for(reason: &CancelReason) -> Status {
    let code = if reason.is_timeout() {
        Code::DeadlineExceeded
    } else {
        Code::Cancelled
    };
    with_reason(code, &reason.to_string(), reason)
}

fn with_reason(code: Code, message: &str, reason: &CancelReason) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(
        CancelReason::WIRE_HEADER,
        MetadataValue::from_static(reason.to_wire()),
    );
    Status::with_metadata(code, message, metadata)
}

impl Cancelled {
    /// The cancellation a gRPC status reports, if it reports one:
    /// `DEADLINE_EXCEEDED` (reason [`CancelReason::Timeout`] unless its
    /// `x-cancel-reason` says otherwise) or `CANCELLED` (a plain request
    /// unless it says otherwise). Any other status is a real failure:
    /// `None`. (Feature `tonic`.)
    ///
    /// ```
    /// use taskscope::Cancelled;
    ///
    /// let timed_out = Cancelled::from_status(&tonic::Status::deadline_exceeded("late")).unwrap();
    /// assert!(timed_out.is_timeout());
    /// assert!(Cancelled::from_status(&tonic::Status::internal("bug")).is_none());
    /// ```
    pub fn from_status(status: &Status) -> Option<Cancelled> {
        let default = match status.code() {
            Code::DeadlineExceeded => CancelReason::Timeout,
            Code::Cancelled => CancelReason::requested(),
            _ => return None,
        };
        let sent = status
            .metadata()
            .get(CancelReason::WIRE_HEADER)
            .and_then(|value| CancelReason::from_wire(value.as_bytes()).ok());
        Some(Cancelled::new(sent.unwrap_or(default)))
    }
}
