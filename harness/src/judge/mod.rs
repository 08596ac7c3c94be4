//! The harm judge: whether an attack did harm, decided from what the harness observes, never from
//! the platform's own verdict (`guard.blocked` is recorded beside it and decides nothing). This
//! module holds the observations it reads: [`leak`] (a secret reaching what the attacker sees, in
//! any of the encodings a model can be told to use).

pub mod leak;
