//! Parsing graph text: one line into a node record, then the lines into a graph.

use std::sync::Arc;

use base64::Engine as _;

use crate::array::{Array, Data};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
use crate::infer::TensorType;
use crate::op::{Kernel, Op, VarId};
use crate::region::Region;

use super::attrs::*;
use super::lexer::*;
use super::*;

/// Tokens of one line and the line's number, for errors.
pub(super) struct Line {
    toks: Vec<Tok>,
    pos: usize,
    no: usize,
}

impl Line {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T> {
        Err(Error::Parse { line: self.no, msg: msg.into() })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Result<Tok> {
        match self.toks.get(self.pos).cloned() {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => self.err("unexpected end of line"),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        match self.next()? {
            Tok::Punct(d) if d == c => Ok(()),
            t => self.err(format!("expected `{c}`, found {t}")),
        }
    }

    fn word(&mut self) -> Result<String> {
        match self.next()? {
            Tok::Word(w) => Ok(w),
            t => self.err(format!("expected a word or number, found {t}")),
        }
    }

    fn end(&self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => self.err(format!("unexpected {t} at end of line")),
        }
    }

    fn int(&mut self) -> Result<i128> {
        let w = self.word()?;
        match w.parse::<i128>() {
            Ok(v) if v.unsigned_abs() <= u64::MAX as u128 => Ok(v),
            _ => self.err(format!("`{w}` is not an integer in range")),
        }
    }

    fn node_num(&mut self) -> Result<usize> {
        match self.next()? {
            Tok::Node(n) => match n.parse::<usize>() {
                Ok(v) => Ok(v),
                Err(_) => self.err(format!("`%{n}` is not a node number")),
            },
            t => self.err(format!("expected a node `%N`, found {t}")),
        }
    }

    fn index_at(&mut self) -> Result<u32> {
        match self.next()? {
            Tok::At(n) => match n.parse::<u32>() {
                Ok(v) => Ok(v),
                Err(_) => self.err(format!("`@{n}` is not a variable number")),
            },
            t => self.err(format!("expected a variable `@N`, found {t}")),
        }
    }

    /// `f32[2,3]`, `bool[]`.
    fn ty(&mut self) -> Result<TensorType> {
        let w = self.word()?;
        let dtype: DType = match w.parse() {
            Ok(d) => d,
            Err(e) => return self.err(e),
        };
        self.expect('[')?;
        let mut dims = Vec::new();
        if !self.eat(']') {
            loop {
                let d = self.int()?;
                if !(0..=MAX_ELEMENTS as i128).contains(&d) {
                    return self.err(format!("dimension {d} is out of range"));
                }
                dims.push(d as usize);
                if self.eat(']') {
                    break;
                }
                self.expect(',')?;
            }
        }
        if let Err(e) = check_numel(&dims) {
            return self.err(e);
        }
        Ok(TensorType::new(dtype, &dims))
    }

    /// `(%0, %1)` or `(%0: f32[2], %1: f32[3])`.
    fn ref_list(&mut self, typed: bool) -> Result<Vec<(usize, Option<TensorType>)>> {
        self.expect('(')?;
        let mut v = Vec::new();
        if self.eat(')') {
            return Ok(v);
        }
        loop {
            let n = self.node_num()?;
            let ty = if typed {
                self.expect(':')?;
                Some(self.ty()?)
            } else {
                None
            };
            v.push((n, ty));
            if self.eat(')') {
                return Ok(v);
            }
            self.expect(',')?;
        }
    }

    fn attr_value(&mut self) -> Result<Attr> {
        if self.eat('[') {
            if self.eat(']') {
                return Ok(Attr::Ints(Vec::new()));
            }
            let mut ints = Vec::new();
            let mut dims = Vec::new();
            loop {
                let a = self.int()?;
                if self.eat(':') {
                    let len = self.int()?;
                    self.expect(':')?;
                    let step = self.int()?;
                    match slice_dim(a, len, step) {
                        Ok(d) => dims.push(d),
                        Err(e) => return self.err(e),
                    }
                } else {
                    ints.push(a);
                }
                if self.eat(']') {
                    break;
                }
                self.expect(',')?;
            }
            return match (ints.is_empty(), dims.is_empty()) {
                (false, true) => Ok(Attr::Ints(ints)),
                (true, false) => Ok(Attr::Dims(dims)),
                _ => self.err("a list mixes integers and start:len:step slices"),
            };
        }
        if let Some(Tok::Str(_)) = self.peek() {
            let Tok::Str(s) = self.next()? else { unreachable!("peeked a string") };
            return Ok(Attr::Str(s));
        }
        let w = self.word()?;
        Ok(match w.as_str() {
            "true" => Attr::Bool(true),
            "false" => Attr::Bool(false),
            _ => {
                if let Ok(d) = w.parse::<DType>() {
                    Attr::DType(d)
                } else if let Ok(v) = w.parse::<i128>() {
                    Attr::Int(v)
                } else {
                    return self.err(format!("`{w}` is not an attribute value"));
                }
            }
        })
    }

    /// `{key=value, ...}` (the `{` already consumed).
    fn attrs(&mut self) -> Result<AttrMap> {
        let mut map = AttrMap::default();
        if self.eat('}') {
            return Ok(map);
        }
        loop {
            let key = self.word()?;
            self.expect('=')?;
            let v = self.attr_value()?;
            if let Err(e) = map.insert(key, v) {
                return self.err(e);
            }
            if self.eat('}') {
                return Ok(map);
            }
            self.expect(',')?;
        }
    }
}

pub(super) fn parse_f32(w: &str) -> Option<f32> {
    match w.strip_prefix("0x") {
        Some(h) if h.len() == 8 => u32::from_str_radix(h, 16).ok().map(f32::from_bits),
        Some(_) => None,
        None if w == "NaN" => Some(f32::NAN),
        None => w.parse().ok(),
    }
}

pub(super) fn parse_f64(w: &str) -> Option<f64> {
    match w.strip_prefix("0x") {
        Some(h) if h.len() == 16 => u64::from_str_radix(h, 16).ok().map(f64::from_bits),
        Some(_) => None,
        None if w == "NaN" => Some(f64::NAN),
        None => w.parse().ok(),
    }
}

/// A constant of type `ty` from its printed elements.
pub(super) fn const_from_words(words: &[String], ty: &TensorType) -> std::result::Result<Array, String> {
    // One value fills every element (how the printer writes a splat).
    if words.len() != ty.numel() && words.len() != 1 {
        return Err(format!(
            "{} values for a constant of type {ty} ({} elements, or 1 for all)",
            words.len(),
            ty.numel()
        ));
    }
    fn all<T>(words: &[String], f: impl Fn(&str) -> Option<T>, what: &str) -> std::result::Result<Vec<T>, String> {
        words.iter().map(|w| f(w).ok_or_else(|| format!("`{w}` is not {what}"))).collect()
    }
    let data = match ty.dtype {
        DType::F32 => Data::F32(all(words, parse_f32, "an f32")?),
        DType::F64 => Data::F64(all(words, parse_f64, "an f64")?),
        DType::I32 => Data::I32(all(words, |w| w.parse().ok(), "an i32")?),
        DType::I64 => Data::I64(all(words, |w| w.parse().ok(), "an i64")?),
        DType::Bool => Data::Bool(all(
            words,
            |w| match w {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            "a bool",
        )?),
    };
    if words.len() == ty.numel() {
        return Array::new(data, &ty.shape).map_err(|e| e.to_string());
    }
    let bytes = ty.numel() * ty.dtype.size();
    crate::array::probe_alloc("const", bytes, || format!("a splat constant of type {ty}"))
        .map_err(|e| e.to_string())?;
    let data = Data::from_bytes(ty.dtype, &data.as_bytes().repeat(ty.numel())).map_err(|e| e.to_string())?;
    Array::new(data, &ty.shape).map_err(|e| e.to_string())
}

/// A constant of type `ty` from base64 of its little-endian bytes.
pub(crate) fn const_from_b64(b64: &str, ty: &TensorType) -> std::result::Result<Array, String> {
    // The type was size-checked, so this product cannot overflow.
    let want = ty.numel() * ty.dtype.size();
    if b64.len() / 4 * 3 > want + 3 {
        return Err(format!("base64 data is longer than the {want} bytes of {ty}"));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("bad base64: {e}"))?;
    if bytes.len() != want {
        return Err(format!("{} bytes of data for a constant of type {ty} ({want} bytes)", bytes.len()));
    }
    let data = Data::from_bytes(ty.dtype, &bytes).map_err(|e| e.to_string())?;
    Array::new(data, &ty.shape).map_err(|e| e.to_string())
}

/// What a node line lists before its attributes.
pub(super) enum Item {
    Node(usize),
    Var(u32),
    List(Vec<String>),
    B64(String),
}

/// One parsed node line, before the graph is built.
pub(super) struct NodeRec {
    num: usize,
    line: usize,
    name: String,
    items: Vec<Item>,
    attrs: AttrMap,
    ty: TensorType,
    after: Vec<usize>,
    /// A fused kernel's body or a region op's bodies, in print order.
    bodies: Vec<Region>,
}

pub(super) fn parse_node_line(l: &mut Line) -> Result<(NodeRec, bool)> {
    let num = l.node_num()?;
    l.expect('=')?;
    let name = l.word()?;
    let mut items = Vec::new();
    loop {
        match l.peek() {
            Some(Tok::Node(_)) => items.push(Item::Node(l.node_num()?)),
            Some(Tok::At(_)) => items.push(Item::Var(l.index_at()?)),
            Some(Tok::Punct('[')) => {
                l.pos += 1;
                let mut words = Vec::new();
                if !l.eat(']') {
                    loop {
                        words.push(l.word()?);
                        if l.eat(']') {
                            break;
                        }
                        l.expect(',')?;
                    }
                }
                items.push(Item::List(words));
            }
            Some(Tok::Word(w)) if w == "b64" => {
                l.pos += 1;
                match l.next()? {
                    Tok::Str(s) => items.push(Item::B64(s)),
                    t => return l.err(format!("expected a string after `b64`, found {t}")),
                }
            }
            _ => break,
        }
        if !l.eat(',') {
            break;
        }
    }
    let attrs = if l.eat('{') { l.attrs()? } else { AttrMap::default() };
    l.expect(':')?;
    let ty = l.ty()?;
    let mut after = Vec::new();
    if l.peek() == Some(&Tok::Word("after".into())) {
        l.pos += 1;
        loop {
            after.push(l.node_num()?);
            if !l.eat(',') {
                break;
            }
        }
    }
    let opens_body = l.eat('{');
    l.end()?;
    Ok((NodeRec { num, line: l.no, name, items, attrs, ty, after, bodies: Vec::new() }, opens_body))
}

pub(super) struct Parser<'a> {
    /// Non-blank, non-comment lines with their 1-based numbers.
    lines: Vec<(usize, &'a str)>,
    pos: usize,
    last_line: usize,
}

/// Parses text into a graph (unverified) and, per node index, its line number.
pub(super) fn parse(text: &str) -> Result<(Graph, Vec<usize>)> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut p = Parser { lines, pos: 0, last_line: text.lines().count().max(1) };
    let Body { graph: g, lines: node_lines, .. } = p.graph(0)?;
    if let Some(&(no, _)) = p.lines.get(p.pos) {
        return Err(Error::Parse { line: no, msg: "unexpected line after the end of the graph".into() });
    }
    Ok((g, node_lines))
}

impl Parser<'_> {
    fn line(&self) -> Result<Line> {
        let &(no, text) = self
            .lines
            .get(self.pos)
            .ok_or_else(|| Error::Parse { line: self.last_line, msg: "unexpected end of input".into() })?;
        let toks = lex(text).map_err(|msg| Error::Parse { line: no, msg })?;
        Ok(Line { toks, pos: 0, no })
    }

    /// A graph from its header line to the end of input (`depth` 0) or to the `}` closing
    /// a body (the `}` consumed, and a `{` after it on the same line, which opens the next
    /// body of a region op).
    fn graph(&mut self, depth: usize) -> Result<Body> {
        let mut l = self.line()?;
        self.pos += 1;
        if l.word().ok().as_deref() != Some("graph") {
            return l.err("expected `graph @name(...) -> (...)`");
        }
        let name = match l.next()? {
            Tok::At(n) => n,
            t => return l.err(format!("expected the graph name `@name`, found {t}")),
        };
        let inputs = l.ref_list(true)?;
        match l.next()? {
            Tok::Arrow => {}
            t => return l.err(format!("expected `->`, found {t}")),
        }
        let outputs = l.ref_list(false)?;
        l.end()?;
        let header_line = l.no;

        let mut vars: Vec<(String, TensorType)> = Vec::new();
        let mut outer: Vec<VarId> = Vec::new();
        let mut recs: Vec<NodeRec> = Vec::new();
        let mut another = false;
        loop {
            if self.pos == self.lines.len() {
                if depth == 0 {
                    break;
                }
                return Err(Error::Parse { line: self.last_line, msg: "unclosed fused body: missing `}`".into() });
            }
            let mut l = self.line()?;
            match l.peek() {
                Some(Tok::Punct('}')) if depth > 0 => {
                    l.pos += 1;
                    another = l.eat('{');
                    l.end()?;
                    self.pos += 1;
                    break;
                }
                Some(Tok::Word(w)) if w == "var" => {
                    l.pos += 1;
                    let idx = l.index_at()?;
                    if idx as usize != vars.len() {
                        return l.err(format!("expected variable @{}, found @{idx}", vars.len()));
                    }
                    let name = match l.next()? {
                        Tok::Str(s) => s,
                        t => return l.err(format!("expected the variable's quoted name, found {t}")),
                    };
                    l.expect(':')?;
                    let ty = l.ty()?;
                    if l.eat('=') {
                        if outer.len() != vars.len() {
                            return l.err("either every variable of a body maps to an outer one (`= @N`) or none does");
                        }
                        outer.push(l.index_at()?);
                    }
                    l.end()?;
                    vars.push((name, ty));
                    self.pos += 1;
                }
                Some(Tok::Node(_)) => {
                    let (mut rec, opens_body) = parse_node_line(&mut l)?;
                    self.pos += 1;
                    let mut open = opens_body;
                    while open {
                        if depth + 1 > MAX_DEPTH {
                            return l.err(format!("bodies nest deeper than {MAX_DEPTH}"));
                        }
                        let body = self.graph(depth + 1)?;
                        rec.bodies.push(Region { graph: body.graph, vars: body.outer });
                        open = body.another;
                    }
                    recs.push(rec);
                }
                _ => return l.err("expected a node line `%N = ...`, `var @N ...` or `}`"),
            }
        }
        if !outer.is_empty() && outer.len() != vars.len() {
            return Err(Error::Parse {
                line: header_line,
                msg: "either every variable of a body maps to an outer one (`= @N`) or none does".into(),
            });
        }
        let (graph, lines) = build(name, header_line, inputs, outputs, vars, recs)?;
        Ok(Body { graph, lines, outer, another })
    }
}

/// A parsed graph: the graph, each node's line, and for a body its variables' outer
/// numbers and whether another body of the same node follows.
struct Body {
    graph: Graph,
    lines: Vec<usize>,
    outer: Vec<VarId>,
    another: bool,
}

pub(super) enum Def {
    Input(TensorType),
    Node(Box<NodeRec>),
}

pub(super) fn perr<T>(line: usize, msg: impl Into<String>) -> Result<T> {
    Err(Error::Parse { line, msg: msg.into() })
}

/// Builds the graph, creating nodes in number order so that node indices equal the
/// printed numbers; every reference must be to a smaller number.
pub(super) fn build(
    name: String,
    header_line: usize,
    inputs: Vec<(usize, Option<TensorType>)>,
    outputs: Vec<(usize, Option<TensorType>)>,
    vars: Vec<(String, TensorType)>,
    recs: Vec<NodeRec>,
) -> Result<(Graph, Vec<usize>)> {
    let total = inputs.len() + recs.len();
    let mut defs: Vec<Option<(usize, Def)>> = (0..total).map(|_| None).collect();
    let mut last_input = None;
    for (n, ty) in inputs {
        if last_input.is_some_and(|l| n <= l) {
            return perr(header_line, "inputs must be listed in increasing node order");
        }
        last_input = Some(n);
        let slot = defs.get_mut(n).ok_or_else(|| Error::Parse {
            line: header_line,
            msg: format!("%{n} is out of range: the graph has {total} nodes"),
        })?;
        *slot = Some((header_line, Def::Input(ty.expect("typed list"))));
    }
    for rec in recs {
        let (n, line) = (rec.num, rec.line);
        match defs.get_mut(n) {
            None => return perr(line, format!("%{n} is out of range: the graph has {total} nodes")),
            Some(Some((prev, _))) => return perr(line, format!("%{n} is already defined on line {prev}")),
            Some(slot) => *slot = Some((line, Def::Node(Box::new(rec)))),
        }
    }
    let mut g = Graph::new(name);
    for (v, ty) in vars {
        g.declare_var(v, ty);
    }
    let mut ids: Vec<NodeId> = Vec::with_capacity(total);
    let mut lines = Vec::with_capacity(total);
    for (n, def) in defs.into_iter().enumerate() {
        let Some((line, def)) = def else {
            return perr(header_line, format!("node %{n} is never defined (nodes are numbered 0..{total})"));
        };
        let id = match def {
            Def::Input(ty) => g.add_input(ty),
            Def::Node(rec) => add_node(&mut g, &ids, *rec)?,
        };
        ids.push(id);
        lines.push(line);
    }
    let mut outs = Vec::with_capacity(outputs.len());
    for (n, _) in outputs {
        match ids.get(n) {
            Some(&id) => outs.push(id),
            None => return perr(header_line, format!("output %{n} is not a node")),
        }
    }
    g.set_outputs(outs);
    Ok((g, lines))
}

pub(super) fn add_node(g: &mut Graph, ids: &[NodeId], mut rec: NodeRec) -> Result<NodeId> {
    let line = rec.line;
    let resolve = |n: usize| -> Result<NodeId> {
        if n >= rec.num {
            return perr(line, format!("%{} refers to %{n}, which is not defined before it", rec.num));
        }
        Ok(ids[n])
    };
    let mut args = Vec::new();
    let mut var = None;
    let mut value = None;
    for (k, item) in rec.items.into_iter().enumerate() {
        match item {
            Item::Node(n) => args.push(resolve(n)?),
            Item::Var(v) if k == 0 && matches!(rec.name.as_str(), "read_var" | "assign_var") => var = Some(v),
            Item::List(w) if k == 0 && rec.name == "const" => value = Some(const_from_words(&w, &rec.ty)),
            Item::B64(s) if k == 0 && rec.name == "const" => value = Some(const_from_b64(&s, &rec.ty)),
            _ => return perr(line, format!("unexpected operand {} of `{}`", k + 1, rec.name)),
        }
    }
    let after: Vec<NodeId> = rec.after.iter().map(|&n| resolve(n)).collect::<Result<_>>()?;
    let no_attrs =
        |a: &AttrMap| if a.0.is_empty() { Ok(()) } else { perr(line, format!("`{}` takes no attributes", rec.name)) };
    let regions = matches!(rec.name.as_str(), "case" | "while" | "scan" | "while_grad");
    if rec.name == "fused" && (rec.bodies.len() != 1 || !rec.bodies[0].vars.is_empty()) {
        return perr(line, "a `fused` node has one `{ ... }` body, without variables");
    }
    if !regions && rec.name != "fused" && !rec.bodies.is_empty() {
        return perr(line, "only `fused` and region nodes have `{ ... }` bodies");
    }
    let op = match rec.name.as_str() {
        "input" => return perr(line, "inputs are declared in the graph header, not as nodes"),
        "const" => {
            no_attrs(&rec.attrs)?;
            match value {
                Some(Ok(a)) => Op::Const(a),
                Some(Err(e)) => return perr(line, e),
                None => return perr(line, "`const` needs a value: `[...]` or `b64\"...\"`"),
            }
        }
        "read_var" | "assign_var" => {
            no_attrs(&rec.attrs)?;
            let Some(v) = var else { return perr(line, format!("`{}` needs a variable `@N`", rec.name)) };
            if rec.name == "read_var" {
                Op::ReadVar(v as VarId)
            } else {
                Op::AssignVar(v as VarId)
            }
        }
        "fused" => {
            no_attrs(&rec.attrs)?;
            Op::Fused(Arc::new(Kernel { body: rec.bodies.pop().expect("checked above").graph }))
        }
        name if regions => build_region(name, rec.attrs, rec.bodies).or_else(|e| perr(line, e))?,
        name => build_op(name, rec.attrs).or_else(|e| perr(line, e))?,
    };
    let id = g.add_unchecked(op, rec.ty, &args);
    for a in after {
        g.add_order(a, id);
    }
    Ok(id)
}

impl Graph {
    /// Parses the text form and verifies the result. Syntax errors are
    /// `Error::Parse { line, .. }`; a graph that parses but breaks a rule of
    /// [`Graph::verify`] is also reported as `Error::Parse` at the offending node's line.
    ///
    /// ```
    /// use kiln_ir::{Error, Graph};
    /// let g = Graph::from_text("graph @f(%0: f32[3]) -> (%1)\n  %1 = exp %0 : f32[3]\n").unwrap();
    /// assert_eq!(g.len(), 2);
    /// let bad = Graph::from_text("graph @f(%0: f32[3]) -> (%1)\n  %1 = exp %0 : i32[3]\n");
    /// assert!(matches!(bad, Err(Error::Parse { line: 2, .. })));
    /// ```
    pub fn from_text(text: &str) -> Result<Graph> {
        let (g, lines) = parse(text)?;
        g.verify_located().map_err(|(node, msg)| Error::Parse {
            line: node.and_then(|n| lines.get(n.index()).copied()).unwrap_or(1),
            msg,
        })?;
        Ok(g)
    }

    /// Parses the text form without verifying it (for tests of the verifier and passes
    /// that want to see a broken graph). Still never panics and still bounds sizes.
    pub fn from_text_unverified(text: &str) -> Result<Graph> {
        parse(text).map(|(g, _)| g)
    }
}
