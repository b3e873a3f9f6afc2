//! The run folder of infty. (Being built; see issue 4.)
