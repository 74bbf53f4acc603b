//! Compute kernels written for this engine, each chosen at run time for the CPU it runs on.

pub(crate) mod int8;
