//! The ticketflow support domain on top of `ticketflow-graph` (being built).
