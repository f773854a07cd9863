//! Cancellations as gRPC statuses, and back.

use ::tonic::metadata::{MetadataMap, MetadataValue};
use ::tonic::{Code, Status};

use crate::cancel::{CancelReason, Cancelled};
use crate::remote::{reason_from_wire, reason_to_wire, REASON_HEADER};

/// The status a call stopped by `cancelled` ends with: `DEADLINE_EXCEEDED`
/// for a timeout or deadline, `CANCELLED` otherwise; its message is the
/// reason, and the `x-cancel-reason` metadata says which.
///
/// ```
/// use taskscope::{CancelReason, Cancelled};
/// use taskscope::tonic::{cancelled_from_status, status_from_cancelled};
///
/// let status = status_from_cancelled(&Cancelled::new(CancelReason::RemoteDeadline));
/// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
/// let back = cancelled_from_status(&status).unwrap();
/// assert_eq!(back.reason(), &CancelReason::RemoteDeadline);
/// ```
pub fn status_from_cancelled(cancelled: &Cancelled) -> Status {
    let reason = cancelled.reason();
    let code = if reason.is_timeout() {
        Code::DeadlineExceeded
    } else {
        Code::Cancelled
    };
    let mut metadata = MetadataMap::new();
    metadata.insert(
        REASON_HEADER,
        MetadataValue::from_static(reason_to_wire(reason)),
    );
    Status::with_metadata(code, reason.to_string(), metadata)
}

/// The cancellation a status reports, if it reports one: `DEADLINE_EXCEEDED`
/// (reason [`CancelReason::Timeout`] unless its `x-cancel-reason` says
/// otherwise) or `CANCELLED` (a plain request unless it says otherwise).
/// Any other status is a real failure: `None`.
///
/// ```
/// use taskscope::tonic::cancelled_from_status;
///
/// let timed_out = cancelled_from_status(&tonic::Status::deadline_exceeded("late")).unwrap();
/// assert!(timed_out.is_timeout());
/// assert!(cancelled_from_status(&tonic::Status::internal("bug")).is_none());
/// ```
pub fn cancelled_from_status(status: &Status) -> Option<Cancelled> {
    let default = match status.code() {
        Code::DeadlineExceeded => CancelReason::Timeout,
        Code::Cancelled => CancelReason::requested(),
        _ => return None,
    };
    let sent = status
        .metadata()
        .get(REASON_HEADER)
        .and_then(|value| reason_from_wire(value.as_bytes()).ok());
    Some(Cancelled::new(sent.unwrap_or(default)))
}
