//! Why an instance could not be stored, in the three classes a C-STORE
//! response can express (DICOM PS3.4 Annex B.2.3).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// Disk full, write or sync failed, database unavailable: the sender may
    /// retry later (status A7xx).
    OutOfResources,
    /// The data set contradicts the command or lacks what the SOP class
    /// requires (status A900).
    DataSetDoesNotMatch,
    /// The data set cannot be parsed, or a UID in it is unusable (status C000).
    CannotUnderstand,
    /// Well formed, but telerad will not take it: a UID that belongs to
    /// another site's study (status 0124, refused: not authorized, PS3.7
    /// C.4.2): the sender must not retry.
    Refused,
}

impl StoreFailure {
    /// The status a C-STORE response (PS3.4 B.2.3) or a STOW-RS Failure
    /// Reason (PS3.18 10.5.3) gives it.
    pub fn status(self) -> u16 {
        match self {
            StoreFailure::OutOfResources => 0xA700,
            StoreFailure::DataSetDoesNotMatch => 0xA900,
            StoreFailure::CannotUnderstand => 0xC000,
            StoreFailure::Refused => 0x0124,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub failure: StoreFailure,
    pub message: String,
}

impl StoreError {
    pub fn out_of_resources(message: impl Into<String>) -> StoreError {
        StoreError {
            failure: StoreFailure::OutOfResources,
            message: message.into(),
        }
    }
    pub fn does_not_match(message: impl Into<String>) -> StoreError {
        StoreError {
            failure: StoreFailure::DataSetDoesNotMatch,
            message: message.into(),
        }
    }
    pub fn refused(message: impl Into<String>) -> StoreError {
        StoreError {
            failure: StoreFailure::Refused,
            message: message.into(),
        }
    }
    pub fn cannot_understand(message: impl Into<String>) -> StoreError {
        StoreError {
            failure: StoreFailure::CannotUnderstand,
            message: message.into(),
        }
    }
}
