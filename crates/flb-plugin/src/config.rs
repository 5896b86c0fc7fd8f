//! Property schema and typed property access.
//!
//! A plugin declares its properties once as a `&'static [Property]`. The same table becomes
//! the C config map the host prints with `-h` and uses to refuse unknown names, and drives
//! parsing here (defaults, types, error messages naming the property). The host never writes
//! into our context (`set_property = 0`), so no layout of ours is shared with it.

use crate::Error;
use std::time::Duration;

/// Value types, as Fluent Bit's config map names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    Double,
    /// A byte size: `4096`, `64k`, `1M`, `2G` (decimal units, as Fluent Bit parses them).
    Size,
    /// A duration: `30` (seconds), `500ms`, `2s`, `5m`, `1h`.
    Time,
    /// A comma-separated list.
    CList,
}

impl Kind {
    pub(crate) fn c_type(self) -> i32 {
        use flb_sys::*;
        (match self {
            Kind::Str => FLB_CONFIG_MAP_STR,
            Kind::Int => FLB_CONFIG_MAP_INT,
            Kind::Bool => FLB_CONFIG_MAP_BOOL,
            Kind::Double => FLB_CONFIG_MAP_DOUBLE,
            Kind::Size => FLB_CONFIG_MAP_SIZE,
            // Our durations accept units Fluent Bit's TIME type does not; STR keeps the host
            // from interpreting them.
            Kind::Time => FLB_CONFIG_MAP_STR,
            Kind::CList => FLB_CONFIG_MAP_CLIST,
        }) as i32
    }
}

/// One property of a plugin.
#[derive(Clone, Copy, Debug)]
pub struct Property {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub description: &'static str,
    pub required: bool,
    /// May be given several times (each occurrence is one value).
    pub multiple: bool,
}

impl Property {
    pub const fn new(name: &'static str, kind: Kind, description: &'static str) -> Property {
        Property { name, kind, default: None, description, required: false, multiple: false }
    }
    pub const fn default(self, value: &'static str) -> Property {
        Property { default: Some(value), ..self }
    }
    pub const fn required(self) -> Property {
        Property { required: true, ..self }
    }
    pub const fn multiple(self) -> Property {
        Property { multiple: true, ..self }
    }
}

/// The properties of one instance, as the user set them, typed through the schema.
pub struct Properties<'a> {
    schema: &'static [Property],
    get: Box<dyn Fn(&str) -> Vec<String> + 'a>,
}

impl<'a> Properties<'a> {
    /// `get(name)` returns every value given for `name` (case-insensitive), in order.
    pub fn new(schema: &'static [Property], get: impl Fn(&str) -> Vec<String> + 'a) -> Self {
        Properties { schema, get: Box::new(get) }
    }

    fn spec(&self, name: &str) -> &'static Property {
        self.schema
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("property '{name}' is not in the plugin's schema"))
    }

    /// The raw value (the last one given), else the default; an error if required and absent.
    pub fn raw(&self, name: &str) -> Result<Option<String>, Error> {
        let spec = self.spec(name);
        let given = (self.get)(spec.name).pop();
        match given.or_else(|| spec.default.map(str::to_owned)) {
            None if spec.required => {
                Err(Error(format!("property '{}' is required: {}", spec.name, spec.description)))
            }
            v => Ok(v),
        }
    }

    pub fn str(&self, name: &str) -> Result<Option<String>, Error> {
        self.raw(name)
    }

    /// A required string property (`required()` in the schema).
    pub fn required_str(&self, name: &str) -> Result<String, Error> {
        match self.raw(name)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(Error(format!("property '{}' is required: {}", name, self.spec(name).description))),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, Error> {
        self.parsed(name, |v| v.trim().parse::<i64>().ok(), "an integer")
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, Error> {
        self.parsed(name, parse_bool, "on/off, true/false or yes/no")
    }

    pub fn double(&self, name: &str) -> Result<Option<f64>, Error> {
        self.parsed(name, |v| v.trim().parse::<f64>().ok(), "a number")
    }

    pub fn size(&self, name: &str) -> Result<Option<u64>, Error> {
        self.parsed(name, parse_size, "a size such as 4096, 64k, 8M or 1G")
    }

    pub fn time(&self, name: &str) -> Result<Option<Duration>, Error> {
        self.parsed(name, parse_duration, "a duration such as 30, 500ms, 2s, 5m or 1h")
    }

    /// A comma-separated list (empty items dropped).
    pub fn list(&self, name: &str) -> Result<Vec<String>, Error> {
        Ok(self.raw(name)?.map(|v| split_list(&v)).unwrap_or_default())
    }

    /// Every value of a property that may be given several times, defaults excluded.
    pub fn all(&self, name: &str) -> Vec<String> {
        (self.get)(self.spec(name).name)
    }

    fn parsed<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>, expected: &str) -> Result<Option<T>, Error> {
        match self.raw(name)? {
            None => Ok(None),
            Some(v) => parse(&v)
                .map(Some)
                .ok_or_else(|| Error(format!("property '{}': invalid value '{}', expected {}", self.spec(name).name, v, expected))),
        }
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// Sizes as Fluent Bit reads them (`flb_utils_size_to_bytes`): K/KB, M/MB, G/GB are powers of
/// 1000. Negative and fractional results are refused.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.trim().parse().ok()?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" => 1.0,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        _ => return None,
    };
    let bytes = num * mult;
    (bytes >= 0.0 && bytes.is_finite() && bytes <= u64::MAX as f64 && bytes.fract() == 0.0).then_some(bytes as u64)
}

pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.trim().parse().ok()?;
    let secs = match unit.to_ascii_lowercase().as_str() {
        "" | "s" => num,
        "ms" => num / 1e3,
        "us" => num / 1e6,
        "m" => num * 60.0,
        "h" => num * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

pub fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    static SCHEMA: &[Property] = &[
        Property::new("path", Kind::Str, "the module").required(),
        Property::new("buf_size", Kind::Size, "line buffer").default("4096"),
        Property::new("oneshot", Kind::Bool, "run once").default("false"),
        Property::new("paths", Kind::CList, "dirs").default("."),
        Property::new("env", Kind::Str, "K=V").multiple(),
        Property::new("timeout", Kind::Time, "per run"),
    ];

    fn props(pairs: &'static [(&'static str, &'static str)]) -> Properties<'static> {
        Properties::new(SCHEMA, move |name| {
            pairs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string()).collect()
        })
    }

    #[test]
    fn defaults_apply() {
        let p = props(&[("path", "/x.wasm")]);
        assert_eq!(p.size("buf_size").unwrap(), Some(4096));
        assert_eq!(p.bool("oneshot").unwrap(), Some(false));
        assert_eq!(p.list("paths").unwrap(), vec!["."]);
        assert_eq!(p.time("timeout").unwrap(), None);
    }

    #[test]
    fn required_missing_names_the_property() {
        let e = props(&[]).required_str("path").unwrap_err().0;
        assert!(e.contains("'path'") && e.contains("required"), "{e}");
        let e = props(&[("path", "  ")]).required_str("path").unwrap_err().0;
        assert!(e.contains("'path'"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_property_and_value() {
        let e = props(&[("path", "x"), ("buf_size", "lots")]).size("buf_size").unwrap_err().0;
        assert!(e.contains("'buf_size'") && e.contains("'lots'"), "{e}");
        let e = props(&[("oneshot", "maybe")]).bool("oneshot").unwrap_err().0;
        assert!(e.contains("'oneshot'"), "{e}");
    }

    #[test]
    fn sizes_follow_fluent_bit() {
        assert_eq!(parse_size("64k"), Some(64_000));
        assert_eq!(parse_size("8KB"), Some(8_000));
        assert_eq!(parse_size("1M"), Some(1_000_000));
        assert_eq!(parse_size("2g"), Some(2_000_000_000));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1KiB"), None);
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn multiple_values_in_order() {
        let p = props(&[("env", "A=1"), ("ENV", "B=2")]);
        assert_eq!(p.all("env"), vec!["A=1", "B=2"]);
        assert_eq!(p.raw("env").unwrap(), Some("B=2".into()));
    }
}
