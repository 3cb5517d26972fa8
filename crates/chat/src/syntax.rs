//! How a family writes tool calls and reasoning, as data: the parser reads calls with it
//! and the grammar builder constrains generation with it, so the two cannot disagree.

/// One piece of a call's written form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// A marker, written as given; reading accepts any white space around it.
    Lit(&'static str),
    /// The function's name (`[A-Za-z0-9_.-]+`).
    Name,
    /// An id the model writes (`[A-Za-z0-9]+`).
    Id,
    /// A call index (digits).
    Index,
    /// The arguments: a JSON object.
    Args,
    /// A JSON object holding the name and the arguments (and maybe an id).
    Object(Keys),
    /// The arguments one parameter at a time.
    Params(Params),
}

/// The keys of a call written as one JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    /// The name's key (`name`, `tool_name`); empty for the short form `{"NAME": {args}}`.
    pub name: &'static str,
    /// The arguments' key (`arguments`, `parameters`).
    pub args: &'static str,
    /// The id's key, when calls carry one.
    pub id: Option<&'static str>,
    /// How ids look when the grammar writes them.
    pub id_kind: IdKind,
}

/// How a model-written id looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Nine letters and digits (Mistral).
    Nine,
    /// A number, counting from 0 (Command R7B).
    Counter,
    /// Any short string.
    Any,
}

/// A call written one parameter at a time (`<parameter=city>Paris</parameter>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Before a parameter's key.
    pub open: &'static str,
    /// After the key (and before the value, unless `value` says more).
    pub key_end: &'static str,
    /// Before the value, after `key_end` (GLM's `<arg_value>`).
    pub value: &'static str,
    /// After the value.
    pub close: &'static str,
    /// Values are written between newlines (`<parameter=k>\nv\n</parameter>`).
    pub newlines: bool,
    /// The key is followed by `string="true|false"` before `>` (DeepSeek's DSML).
    pub string_attr: bool,
}

/// How a family writes its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSyntax {
    /// Markers written once before the calls.
    pub open: &'static [&'static str],
    /// The calls are the items of one JSON array after `open`.
    pub array: bool,
    /// One call.
    pub call: &'static [Piece],
    /// Written between two calls.
    pub between: &'static str,
    /// Written once after the calls.
    pub close: Option<&'static str>,
    /// Calls are recognised only at the very start of the output (Llama 3.x).
    pub at_start: bool,
    /// A call may have this name and be plain content instead (Functionary's `all`).
    pub content_recipient: Option<&'static str>,
    /// Whether the format can carry several calls.
    pub parallel: bool,
}

/// How a family marks reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasoningTags {
    /// Opens the reasoning.
    pub open: &'static str,
    /// Ends it.
    pub close: &'static str,
}

/// The `<think>` tags most families use.
pub const THINK: ReasoningTags = ReasoningTags {
    open: "<think>",
    close: "</think>",
};

impl CallSyntax {
    /// The marker that starts the calls (what a lazy grammar waits for), if there is
    /// one; formats recognised at the start have none.
    pub fn start_marker(&self) -> Option<&'static str> {
        if let Some(first) = self.open.first() {
            return Some(first);
        }
        match self.call.first() {
            Some(Piece::Lit(l)) => Some(l),
            _ => None,
        }
    }

    /// Every marker, for the tokens that must be read as text.
    pub fn markers(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self.open.to_vec();
        out.extend(self.close);
        for p in self.call {
            match p {
                Piece::Lit(l) => out.push(l),
                Piece::Params(p) => out.extend([p.open, p.key_end, p.value, p.close]),
                _ => {}
            }
        }
        if !self.between.trim().is_empty() {
            out.push(self.between);
        }
        out.retain(|m| !m.trim().is_empty());
        out
    }
}

// The building blocks the families' syntaxes are made of.

pub(crate) const OBJ: Keys = Keys {
    name: "name",
    args: "arguments",
    id: None,
    id_kind: IdKind::Any,
};

pub(crate) fn syntax(call: &'static [Piece]) -> CallSyntax {
    CallSyntax {
        open: &[],
        array: false,
        call,
        between: "\n",
        close: None,
        at_start: false,
        content_recipient: None,
        parallel: true,
    }
}

pub(crate) fn json_list(
    open: &'static [&'static str],
    call: &'static [Piece],
    close: Option<&'static str>,
) -> CallSyntax {
    CallSyntax {
        open,
        array: true,
        close,
        between: ", ",
        ..syntax(call)
    }
}

pub(crate) const COMMAND_KEYS: Keys = Keys {
    name: "tool_name",
    args: "parameters",
    id: Some("tool_call_id"),
    id_kind: IdKind::Counter,
};
pub(crate) const PLUS_KEYS: Keys = Keys {
    name: "tool_name",
    args: "parameters",
    id: None,
    id_kind: IdKind::Any,
};
pub(crate) const NEMO_KEYS: Keys = Keys {
    id: Some("id"),
    id_kind: IdKind::Nine,
    ..OBJ
};
pub(crate) const APRIEL_KEYS: Keys = Keys {
    id: Some("id"),
    ..OBJ
};
pub(crate) const SHORT_KEYS: Keys = Keys { name: "", ..OBJ };

pub(crate) const QWEN_PARAMS: Params = Params {
    open: "<parameter=",
    key_end: ">",
    value: "",
    close: "</parameter>",
    newlines: true,
    string_attr: false,
};

pub(crate) const fn xml_params(
    open: &'static str,
    key_end: &'static str,
    close: &'static str,
) -> Params {
    Params {
        open,
        key_end,
        value: "",
        close,
        newlines: false,
        string_attr: false,
    }
}

pub(crate) const SEED_PARAMS: Params = xml_params("<parameter=", ">", "</parameter>");
pub(crate) const MINIMAX_PARAMS: Params = xml_params("<parameter name=\"", "\">", "</parameter>");
pub(crate) const MINICPM_PARAMS: Params = xml_params("<param name=\"", "\">", "</param>");
