//! `Json`: a jsonb argument as a `serde_json::Value`, read so that bad input is an
//! ERROR with its own SQLSTATE. pgrx's `JsonB` panics when serde_json refuses the text
//! (nesting past its recursion limit), which reaches the caller as an internal error
//! (XX000); this type says "nested deeper than N levels" with 54001 instead.

use crate::error::{HotmeshError, Raise};
use hotmesh_engine::error::EngineError;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable,
};
use pgrx::prelude::*;
use serde_json::Value;

/// How deep an argument may nest: serde_json's own limit, which parsing enforces (no
/// second walk of the value).
pub const MAX_DEPTH: usize = hotmesh_engine::limits::MAX_JSON_DEPTH;

/// A jsonb value, parsed with clean errors.
#[derive(Debug, Clone)]
pub struct Json(pub Value);

impl Json {
    /// The text of a jsonb datum, parsed. Errors are raised, never panicked.
    unsafe fn from_jsonb(datum: pg_sys::Datum) -> Json {
        let varlena = datum.cast_mut_ptr();
        let detoasted = unsafe { pg_sys::pg_detoast_datum_packed(varlena) };
        // jsonb_out returns a cstring (palloc'd), the text jsonb prints: valid UTF-8 in
        // the UTF8 databases the extension requires
        let cstr = unsafe {
            pgrx::direct_function_call::<&core::ffi::CStr>(
                pg_sys::jsonb_out,
                &[Some(detoasted.into())],
            )
        };
        let parsed = match cstr {
            Some(c) => {
                let v = parse(&c.to_string_lossy());
                unsafe { pg_sys::pfree(c.as_ptr() as *mut core::ffi::c_void) };
                v
            }
            None => Ok(Value::Null),
        };
        if detoasted != varlena {
            unsafe { pg_sys::pfree(detoasted.cast()) };
        }
        Json(parsed.unwrap_or_else(|e| e.raise()))
    }
}

/// JSON text (as jsonb prints it) to a value: deeper than [`MAX_DEPTH`] is an error that
/// says so.
pub fn parse(text: &str) -> Result<Value, HotmeshError> {
    serde_json::from_str(text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            HotmeshError::TooDeep {
                what: "a JSON value".into(),
                max: MAX_DEPTH,
            }
        } else {
            EngineError::InvalidArgument {
                name: "json",
                problem: e.to_string(),
            }
            .into()
        }
    })
}

impl FromDatum for Json {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Json> {
        if is_null || datum.is_null() {
            None
        } else {
            Some(unsafe { Json::from_jsonb(datum) })
        }
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for Json {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

unsafe impl SqlTranslatable for Json {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Json);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}

unsafe impl pgrx::datum::UnboxDatum for Json {
    type As<'src> = Json;
    unsafe fn unbox<'src>(d: pgrx::datum::Datum<'src>) -> Json
    where
        Self: 'src,
    {
        unsafe { Json::from_jsonb(d.sans_lifetime()) }
    }
}

/// A value written as a jsonb argument from a reference: printed and read by `jsonb_in`
/// as pgrx's `JsonB` does, without the deep copy an owned `JsonB` needs (the engine
/// writes a job's data and its activities' state at every step, and copied each only to
/// print it).
pub struct JsonOut<'a, T: serde::Serialize + ?Sized>(pub &'a T);

impl<T: serde::Serialize + ?Sized> IntoDatum for JsonOut<'_, T> {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let text = serde_json::to_string(self.0).unwrap_or_else(|e| {
            EngineError::Internal(format!("a value did not print as JSON: {e}")).raise()
        });
        // JSON text holds no NUL byte (serde escapes one in a string as \u0000)
        let cstring = std::ffi::CString::new(text)
            .unwrap_or_else(|_| EngineError::Internal("a NUL in JSON text".into()).raise());
        // SAFETY: jsonb_in reads the C string, which lives to the end of the call
        unsafe {
            pgrx::fcinfo::direct_function_call_as_datum(
                pg_sys::jsonb_in,
                &[Some(pg_sys::Datum::from(cstring.as_ptr()))],
            )
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}
