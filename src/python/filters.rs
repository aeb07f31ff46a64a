//! `MetadataFilters` (LlamaIndex pydantic models) -> core `Filters`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::convert::py_to_value;
use crate::vectors::{FilterCondition, FilterNode, FilterOperator, Filters, MetadataFilter};

fn enum_value(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    // FilterOperator / FilterCondition are `str` enums; a plain string is accepted as well.
    let v = if obj.hasattr("value")? {
        obj.getattr("value")?
    } else {
        obj.clone()
    };
    Ok(v.str()?.to_str()?.to_owned())
}

fn operator_of(obj: &Bound<'_, PyAny>) -> PyResult<FilterOperator> {
    Ok(match enum_value(obj)?.as_str() {
        "==" => FilterOperator::Eq,
        "!=" => FilterOperator::Ne,
        ">" => FilterOperator::Gt,
        ">=" => FilterOperator::Gte,
        "<" => FilterOperator::Lt,
        "<=" => FilterOperator::Lte,
        "in" => FilterOperator::In,
        "nin" => FilterOperator::Nin,
        "any" => FilterOperator::Any,
        "all" => FilterOperator::All,
        "text_match" => FilterOperator::TextMatch,
        "text_match_insensitive" => FilterOperator::TextMatchInsensitive,
        "contains" => FilterOperator::Contains,
        "is_empty" => FilterOperator::IsEmpty,
        _ => return Err(PyValueError::new_err(format!("Invalid operator: {}", obj.repr()?))),
    })
}

fn condition_of(obj: &Bound<'_, PyAny>) -> PyResult<FilterCondition> {
    if obj.is_none() {
        return Ok(FilterCondition::And);
    }
    Ok(match enum_value(obj)?.as_str() {
        "and" => FilterCondition::And,
        "or" => FilterCondition::Or,
        "not" => FilterCondition::Not,
        _ => {
            return Err(PyValueError::new_err(format!(
                "Invalid filter condition: {}",
                obj.repr()?
            )))
        }
    })
}

/// Converts a `MetadataFilters`; nested `MetadataFilters` become groups (our documented extension).
pub fn convert_filters(obj: &Bound<'_, PyAny>) -> PyResult<Filters> {
    let mut filters = Vec::new();
    for item in obj.getattr("filters")?.try_iter()? {
        let item = item?;
        if item.hasattr("filters")? {
            filters.push(FilterNode::Group(convert_filters(&item)?));
            continue;
        }
        let key: String = item.getattr("key")?.extract()?;
        let value = py_to_value(&item.getattr("value")?)?;
        let operator = operator_of(&item.getattr("operator")?)?;
        filters.push(FilterNode::Filter(MetadataFilter { key, value, operator }));
    }
    let condition = condition_of(&obj.getattr("condition")?)?;
    Ok(Filters { filters, condition })
}
