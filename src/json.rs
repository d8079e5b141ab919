//! jsonb and `serde_json::Value`, both ways. `Json` reads a jsonb argument or column by
//! walking the document, so that bad input is an ERROR with its own SQLSTATE (pgrx's
//! `JsonB` panics when serde_json refuses the text it prints, nesting past its recursion
//! limit, which reaches the caller as an internal error, XX000; this type says "nested
//! deeper than N levels" with 54001 instead) and no document is printed to be parsed.
//! `JsonOut` writes a value from a reference.

use crate::error::{HotmeshError, Raise};
use hotmesh_engine::error::EngineError;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable,
};
use pgrx::prelude::*;
use serde_json::{Map, Value};

/// How deep a value read may nest: serde_json's own limit (what a parse of the text
/// would allow), checked as the document is walked.
pub const MAX_DEPTH: usize = hotmesh_engine::limits::MAX_JSON_DEPTH;

/// A jsonb value, read with clean errors.
#[derive(Debug, Clone)]
pub struct Json(pub Value);

impl Json {
    /// A jsonb datum as a value, read by walking its containers (`JsonbIteratorNext`):
    /// strings come straight from the datum and numbers through `numeric_out`, the text
    /// `jsonb_out` would print for them, so the value is the one [`Json::from_jsonb_text`]
    /// reads, without printing and parsing the whole document. Errors are raised, never
    /// panicked: deeper than [`MAX_DEPTH`] says so (54001), as the parser did.
    unsafe fn from_jsonb(datum: pg_sys::Datum) -> Json {
        Json(unsafe { Json::read(datum) }.unwrap_or_else(|e| e.raise()))
    }

    /// [`Json::from_jsonb`]'s reading, its error returned.
    pub(crate) unsafe fn read(datum: pg_sys::Datum) -> Result<Value, HotmeshError> {
        let varlena = datum.cast_mut_ptr();
        // a full 4-byte header: the container starts where `Jsonb.root` says
        let detoasted = unsafe { pg_sys::pg_detoast_datum(varlena) };
        let read = unsafe { walk(detoasted.cast::<pg_sys::Jsonb>()) };
        if detoasted != varlena {
            unsafe { pg_sys::pfree(detoasted.cast()) };
        }
        read
    }

    /// The text of a jsonb datum, parsed: what [`Json::from_jsonb`] must agree with
    /// (the tests compare them).
    #[cfg(any(test, feature = "pg_test"))]
    pub(crate) unsafe fn from_jsonb_text(datum: pg_sys::Datum) -> Result<Value, HotmeshError> {
        let varlena = datum.cast_mut_ptr();
        let detoasted = unsafe { pg_sys::pg_detoast_datum_packed(varlena) };
        let cstr = unsafe {
            pgrx::direct_function_call::<&core::ffi::CStr>(
                pg_sys::jsonb_out,
                &[Some(detoasted.into())],
            )
        };
        let parsed = match cstr {
            Some(c) => parse(&c.to_string_lossy()),
            None => Ok(Value::Null),
        };
        if detoasted != varlena {
            unsafe { pg_sys::pfree(detoasted.cast()) };
        }
        parsed
    }
}

/// A container being read: its members so far (an array's `bool`: a scalar at the top
/// level, which jsonb stores as an array of one).
enum Open {
    Array(Vec<Value>, bool),
    Object(Map<String, Value>, Option<String>),
}

/// Reads a detoasted jsonb document.
unsafe fn walk(jb: *mut pg_sys::Jsonb) -> Result<Value, HotmeshError> {
    use pg_sys::JsonbIteratorToken as T;
    let mut it = unsafe { pg_sys::JsonbIteratorInit(&raw mut (*jb).root) };
    // SAFETY: a plain C struct, filled by each call below
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    let mut open: Vec<Open> = vec![];
    let mut top = Value::Null;
    loop {
        let token = unsafe { pg_sys::JsonbIteratorNext(&mut it, &mut v, false) };
        let closed = match token {
            T::WJB_DONE => break,
            T::WJB_BEGIN_ARRAY | T::WJB_BEGIN_OBJECT => {
                if open.len() >= MAX_DEPTH {
                    return Err(HotmeshError::TooDeep {
                        what: "a JSON value".into(),
                        max: MAX_DEPTH,
                    });
                }
                open.push(if token == T::WJB_BEGIN_ARRAY {
                    // SAFETY: the token says which member of the union is set
                    let (n, raw) = unsafe { (v.val.array.nElems, v.val.array.rawScalar) };
                    Open::Array(Vec::with_capacity(n.max(0) as usize), raw)
                } else {
                    Open::Object(Map::new(), None)
                });
                continue;
            }
            T::WJB_KEY => {
                let key = unsafe { text_of(&v) };
                if let Some(Open::Object(_, k)) = open.last_mut() {
                    *k = Some(key);
                }
                continue;
            }
            T::WJB_VALUE | T::WJB_ELEM => unsafe { scalar(&v) }?,
            T::WJB_END_ARRAY => match open.pop() {
                Some(Open::Array(mut members, true)) => members.pop().unwrap_or(Value::Null),
                Some(Open::Array(members, false)) => Value::Array(members),
                _ => return Err(broken()),
            },
            T::WJB_END_OBJECT => match open.pop() {
                Some(Open::Object(members, _)) => Value::Object(members),
                _ => return Err(broken()),
            },
            _ => return Err(broken()),
        };
        match open.last_mut() {
            None => top = closed,
            Some(Open::Array(members, _)) => members.push(closed),
            Some(Open::Object(members, key)) => {
                members.insert(key.take().unwrap_or_default(), closed);
            }
        }
    }
    Ok(top)
}

fn broken() -> HotmeshError {
    EngineError::Internal("a jsonb document out of order".into()).into()
}

/// A string of the document (a key or a value): UTF-8, as the database's encoding is.
unsafe fn text_of(v: &pg_sys::JsonbValue) -> String {
    // SAFETY: a jbvString points into the document, `len` bytes
    let bytes = unsafe {
        std::slice::from_raw_parts(
            v.val.string.val.cast::<u8>(),
            v.val.string.len.max(0) as usize,
        )
    };
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scalar of the document.
unsafe fn scalar(v: &pg_sys::JsonbValue) -> Result<Value, HotmeshError> {
    use pg_sys::jbvType as J;
    Ok(match v.type_ {
        J::jbvNull => Value::Null,
        J::jbvBool => Value::Bool(unsafe { v.val.boolean }),
        J::jbvString => Value::String(unsafe { text_of(v) }),
        J::jbvNumeric => {
            // the number's text as jsonb prints it, read as the parser reads it
            let text = unsafe {
                pgrx::direct_function_call::<&core::ffi::CStr>(
                    pg_sys::numeric_out,
                    &[Some(pg_sys::Datum::from(v.val.numeric))],
                )
            };
            let Some(c) = text else {
                return Err(broken());
            };
            let n = parse(&c.to_string_lossy());
            unsafe { pg_sys::pfree(c.as_ptr() as *mut core::ffi::c_void) };
            n?
        }
        _ => return Err(broken()),
    })
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

// a row's column is read as `Json` (SPI checks the column's type against `type_oid`)
impl IntoDatum for Json {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        JsonOut(&self.0).into_datum()
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
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
