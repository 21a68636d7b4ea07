//! The states a record can be in, one enum each, with the text the database stores. Migrations
//! 0007, 0008 and 0010 hold the same lists as CHECK constraints (a test keeps them equal), so a state outside
//! them can be neither written by hptune nor by hand.

/// An enum of states, each with its stored text.
macro_rules! states {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every state, in order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The text the database stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The state a stored text names.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use states;

states! {
    /// A tuning trial, as Optuna names its states.
    TrialState {
        Running = "RUNNING",
        Complete = "COMPLETE",
        Pruned = "PRUNED",
        Fail = "FAIL",
    }
}

states! {
    /// A training run or an extended run.
    RunStatus {
        Running = "running",
        Finished = "finished",
        Failed = "failed",
    }
}

states! {
    /// A cross-validation fold of an extended run.
    FoldStatus {
        Pending = "pending",
        Running = "running",
        Finished = "finished",
        Failed = "failed",
    }
}

states! {
    /// The stage that trained a run.
    RunStage {
        Tune = "tune",
        Extend = "extend",
        Train = "train",
        /// A model trained in another database, imported for a backtest.
        Import = "import",
    }
}

states! {
    /// Which model a backtest used, and how it was picked.
    ModelSource {
        /// `--model-path`.
        Path = "path",
        /// The newest final model.
        Final = "final",
        /// The newest extended run's best configuration.
        Extended = "extended",
        /// The newest study's best trial.
        Tuning = "tuning",
        /// The default configuration, trained for the backtest.
        Default = "default",
    }
}

states! {
    /// A trade's direction.
    Side {
        Long = "long",
        Short = "short",
    }
}

states! {
    /// A checkpoint's role in its run.
    Role {
        /// The weights of the lowest validation loss.
        Best = "best",
        /// The weights after the last epoch.
        Final = "final",
    }
}
