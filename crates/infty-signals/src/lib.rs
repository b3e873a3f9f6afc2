//! The JSON contract between infty's roles. (Being built; see issue 3.)
