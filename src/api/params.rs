//! Typed access to request parameters; every failure names the parameter (`10001`).

use super::error::ApiError;
use serde_json::{Map, Value};

pub struct Params<'a>(pub &'a Map<String, Value>);

impl<'a> Params<'a> {
    /// A string parameter; absent, null and "" are `None`.
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid(format!("参数 {name} 应为字符串"))),
        }
    }

    pub fn str(&self, name: &str) -> Result<String, ApiError> {
        self.opt_str(name)?
            .ok_or_else(|| ApiError::invalid(format!("参数 {name} 缺失")))
    }

    /// An integer parameter (a JSON number without fraction).
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("参数 {name} 应为整数"))),
            Some(_) => Err(ApiError::invalid(format!("参数 {name} 应为整数"))),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64, ApiError> {
        self.opt_int(name)?
            .ok_or_else(|| ApiError::invalid(format!("参数 {name} 缺失")))
    }

    pub fn opt_value(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }
}
