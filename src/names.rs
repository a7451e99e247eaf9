//! Enums the Python layer selects by name (`loss="warp-kos"`, `negative_sampling="uniform"`).
//!
//! Each such enum declares its names once, next to its definition, with [`by_name!`]; the one
//! table gives the parse (`FromStr`, whose error names the argument and lists the allowed
//! names), the variant's name (`name`, `Display`) and the list of names (`NAMES`), so they
//! cannot disagree. A variant with options is parsed with its default options; the caller sets
//! the options it was given.

use crate::error::Error;

/// The error for `got`, which is none of `names`, given as argument `what`.
pub fn unknown(what: &str, got: &str, names: &[&str]) -> Error {
    let allowed: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    Error::invalid(
        what,
        format!("must be one of {}, got '{got}'", allowed.join(", ")),
    )
}

/// `by_name! { Type, "argument", "name" => Variant, "other" => Variant2 { option: default } }`
/// implements `Type::NAMES`, `Type::from_name(what, name)`, `Type::name(&self)`, `FromStr`
/// (whose errors name `"argument"`) and `Display` from one table of names.
macro_rules! by_name {
    ($ty:ident, $arg:literal,
     $($name:literal => $variant:ident $({ $($field:ident : $value:expr),* $(,)? })?),+ $(,)?) => {
        impl $ty {
            /// The names the variants are selected by.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The variant called `name` (with its default options), or an error naming `what`,
            /// the argument that gave it.
            pub fn from_name(what: &str, name: &str) -> $crate::error::Result<Self> {
                match name {
                    $($name => Ok($ty::$variant $({ $($field: $value),* })?),)+
                    other => Err($crate::names::unknown(what, other, Self::NAMES)),
                }
            }

            /// The name this variant is selected by.
            pub fn name(&self) -> &'static str {
                match self {
                    $($ty::$variant { .. } => $name,)+
                }
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::error::Error;

            fn from_str(s: &str) -> $crate::error::Result<Self> {
                Self::from_name($arg, s)
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use by_name;

#[cfg(test)]
mod tests {
    use crate::error::Error;

    #[derive(Debug, PartialEq)]
    enum Shape {
        Dot,
        Box { side: u32 },
    }

    by_name! { Shape, "shape", "dot" => Dot, "box" => Box { side: 3 } }

    #[test]
    fn names_parse_and_print_both_ways() {
        assert_eq!(Shape::NAMES, ["dot", "box"]);
        assert_eq!("dot".parse::<Shape>(), Ok(Shape::Dot));
        assert_eq!("box".parse::<Shape>(), Ok(Shape::Box { side: 3 }));
        assert_eq!(Shape::Box { side: 7 }.to_string(), "box");
        assert_eq!(Shape::Dot.name(), "dot");
    }

    #[test]
    fn unknown_names_name_the_argument_and_the_choices() {
        let e = "cube".parse::<Shape>().unwrap_err();
        assert_eq!(
            e,
            Error::invalid("shape", "must be one of 'dot', 'box', got 'cube'")
        );
        assert_eq!(
            Shape::from_name("outline", "").unwrap_err().to_string(),
            "outline: must be one of 'dot', 'box', got ''"
        );
    }
}
