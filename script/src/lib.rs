//! Settle script VM (under construction).
