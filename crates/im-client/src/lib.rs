//! Client for the Infrastructure Manager REST API (work in progress).
