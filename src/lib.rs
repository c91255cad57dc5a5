//! analytics-action library.
