//! Routing of complete studies to radiologists.
//!
//! This crate decides who should read a study and how soon: the rota engine
//! ([`rota`]) says who is on duty at an instant and why, the rules engine
//! ([`rules`]) turns what is known of a study into the subspecialty that
//! should read it and its priority, and [`sla`] gives the deadlines of that
//! priority. Those three are pure functions of the configuration and their
//! inputs: no clock, no database, no network, so that they can be tested
//! exhaustively (see the property tests) and explained line by line. The
//! database-backed assignment and escalation live in the other modules and
//! call them; images are queued for workstations in the store's outbox.
//! It is not for receiving, storing or sending images (the `telerad-forward`
//! crate sends them), nor for serving the worklist.

pub mod rota;
pub mod rules;
pub mod sla;

pub mod assignment;
pub mod candidates;
pub mod service;
