//! DICOMweb for radiologists' viewers (to come): the studies, series and
//! instances the store keeps, searched and read over HTTP from the same
//! files. It will answer through `telerad-http` (errors, paging, the common
//! layers) and sit beside `telerad-worklist`, not on it.
//!
//! It is not for the reading worklist (`telerad-worklist`) nor for the
//! operators' endpoints (`telerad-operations`).
