//! infty's streaming model client. (Being built; see issue 5.)
