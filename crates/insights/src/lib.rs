//! What drives sentiment, computed without I/O.
//!
//! [`terms`] turns a post into the terms an analyst reads: normalised words and two-word
//! phrases without stop words, hashtags and @mentions as written; [`entities`] finds the
//! products and brands of a catalogue that it names. [`log_odds`] ranks terms by
//! how much more often they occur in one set of posts (the negative posts of a window, say)
//! than in another (a baseline), with the weighted log-odds ratio and an informative Dirichlet
//! prior (Monroe, Colaresi and Quinn, 2008), which does not let a term seen twice outrank one
//! seen two hundred times. [`drivers`] keeps the terms whose rise is more than a family of
//! that many tests would show by chance.

pub mod drivers;
pub mod entities;
pub mod log_odds;
pub mod terms;
