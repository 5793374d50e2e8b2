//! TOSCA Simple Profile parser and validator (work in progress).
