//! Neural-network modules.
