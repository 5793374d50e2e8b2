//! Parsing a TOSCA service template: version, metadata, imports, type definitions,
//! and the topology (inputs, node templates with requirements, outputs, policies).
//! Every structural problem is reported with its line and column.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::{Error, Pos};
use crate::instances::{literal_count, COUNT_PROPERTIES, MAX_INSTANCES};
use crate::types::{Family, Registry, TypeDef};
use crate::values::{check, escape, parse_schema, Schema, Violation};
use crate::yaml::{self, Node, Yaml};

/// TOSCA versions this parser reads.
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "tosca_simple_yaml_1_0",
    "tosca_simple_yaml_1_1",
    "tosca_simple_yaml_1_2",
    "tosca_simple_yaml_1_3",
];

/// An `imports` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// The URL or path, as written.
    pub url: String,
    /// The import's name (`name: url` forms), if any.
    pub name: Option<String>,
    /// Where it is declared.
    pub pos: Pos,
}

/// An input definition.
#[derive(Debug, Clone)]
pub struct InputDef {
    /// Name.
    pub name: String,
    /// Type, constraints and entry schema.
    pub schema: Schema,
    /// Description.
    pub description: Option<String>,
    /// Whether a value is needed (when there is no default).
    pub required: bool,
    /// Default value.
    pub default: Option<Value>,
    /// Where it is defined.
    pub pos: Pos,
}

/// A requirement of a node template.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// Requirement name (`host`, `dependency`...).
    pub name: String,
    /// Target node template or node type.
    pub node: Option<String>,
    /// Capability asked for.
    pub capability: Option<String>,
    /// Relationship type or template.
    pub relationship: Option<String>,
}

/// A node template.
#[derive(Debug, Clone)]
pub struct NodeTemplate {
    /// Name.
    pub name: String,
    /// Its type (short names resolved).
    pub node_type: String,
    /// Properties as JSON (intrinsic functions unevaluated).
    pub properties: Map<String, Value>,
    /// Capabilities as JSON.
    pub capabilities: Map<String, Value>,
    /// Requirements in order.
    pub requirements: Vec<Requirement>,
    /// Where it is defined.
    pub pos: Pos,
}

/// An output.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Value expression as JSON.
    pub value: Value,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub(crate) version: String,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) description: Option<String>,
    pub(crate) imports: Vec<Import>,
    pub(crate) registry: Registry,
    pub(crate) inputs: Vec<InputDef>,
    pub(crate) node_templates: Vec<NodeTemplate>,
    pub(crate) outputs: Vec<Output>,
    pub(crate) policies: Vec<Value>,
    pub(crate) root: Node,
}

fn root_map(src: &str) -> Result<Node, Error> {
    let root = yaml::parse(src)?;
    if root.as_map().is_none() {
        return Err(Error::at(
            root.pos,
            "a TOSCA template must be a YAML mapping",
        ));
    }
    Ok(root)
}

fn imports_in(root: &Node) -> Result<Vec<Import>, Error> {
    let Some(node) = root.get("imports") else {
        return Ok(vec![]);
    };
    if node.value == Yaml::Null {
        return Ok(vec![]);
    }
    let items = node
        .as_seq()
        .ok_or_else(|| Error::at(node.pos, "'imports' must be a list"))?;
    let mut out = Vec::new();
    for item in items {
        let import = match &item.value {
            Yaml::Str(url) => Import {
                url: url.clone(),
                name: None,
                pos: item.pos,
            },
            Yaml::Map(entries) if item.get("file").is_some() => Import {
                url: item
                    .get("file")
                    .and_then(Node::as_str)
                    .ok_or_else(|| Error::at(item.pos, "an import's 'file' must be a string"))?
                    .to_string(),
                name: None,
                pos: item.pos,
            },
            Yaml::Map(entries) if entries.len() == 1 => {
                let (name, value) = &entries[0];
                let url = match &value.value {
                    Yaml::Str(url) => url.clone(),
                    Yaml::Map(_) => value
                        .get("file")
                        .and_then(Node::as_str)
                        .ok_or_else(|| {
                            Error::at(value.pos, format!("import '{}' has no 'file'", name.text))
                        })?
                        .to_string(),
                    _ => {
                        return Err(Error::at(
                            value.pos,
                            format!("import '{}' must be a URL or a map with 'file'", name.text),
                        ))
                    }
                };
                Import {
                    url,
                    name: Some(name.text.clone()),
                    pos: item.pos,
                }
            }
            _ => {
                return Err(Error::at(
                    item.pos,
                    "an import must be a URL, 'name: URL' or a map with 'file'",
                ))
            }
        };
        if import.url.trim().is_empty() {
            return Err(Error::at(import.pos, "an import's URL is empty"));
        }
        out.push(import);
    }
    Ok(out)
}

/// The imports a document declares, so the caller can fetch them (transitively).
pub fn imports_of(src: &str) -> Result<Vec<Import>, Error> {
    imports_in(&root_map(src)?)
}

/// Defines the types of one document, returning those it added to the registry (a
/// type already defined by an earlier document keeps its first definition) in
/// document order.
fn define_types(doc: &Node, registry: &mut Registry) -> Result<Vec<(Family, String)>, Error> {
    let mut added = Vec::new();
    for family in Family::ALL {
        let Some(section) = doc.get(family.section()) else {
            continue;
        };
        if section.value == Yaml::Null {
            continue;
        }
        let entries = section.as_map().ok_or_else(|| {
            Error::at(
                section.pos,
                format!("'{}' must be a mapping", family.section()),
            )
        })?;
        for (name, def) in entries {
            let derived_from = match def.get("derived_from") {
                Some(d) => Some(
                    d.as_str()
                        .ok_or_else(|| Error::at(d.pos, "'derived_from' must be a type name"))?
                        .to_string(),
                ),
                None => None,
            };
            registry.define(
                family,
                TypeDef {
                    name: name.text.clone(),
                    derived_from,
                    definition: Some(def.clone()),
                },
            );
            let kept = registry
                .get(family, &name.text)
                .and_then(|t| t.definition.as_ref())
                == Some(def);
            if kept {
                added.push((name.pos, family, name.text.clone()));
            }
        }
    }
    added.sort_by_key(|(pos, _, _)| (pos.line, pos.column));
    Ok(added.into_iter().map(|(_, f, n)| (f, n)).collect())
}

/// A type brought in by an import, with the chain of imports that brought it
/// (outermost first), so that its problems are located at the template's import.
struct ImportedType {
    family: Family,
    name: String,
    via: Vec<(String, Pos)>,
}

/// Locates a problem found inside an import at the import's entry, keeping the
/// inner position in the message.
fn in_import(e: Error, url: &str, pos: Pos) -> Error {
    Error {
        message: format!("in import '{url}': {e}"),
        line: Some(pos.line),
        column: Some(pos.column),
        kind: e.kind,
    }
}

fn load_imports(
    doc: &Node,
    imports: &HashMap<String, String>,
    registry: &mut Registry,
    seen: &mut HashSet<String>,
    via: &[(String, Pos)],
    out: &mut Vec<ImportedType>,
) -> Result<(), Error> {
    for import in imports_in(doc)? {
        if !seen.insert(import.url.clone()) {
            continue;
        }
        let Some(text) = imports.get(&import.url) else {
            return Err(Error::missing_import(import.pos, &import.url));
        };
        let mut path = via.to_vec();
        path.push((import.url.clone(), import.pos));
        let mut load = || -> Result<(), Error> {
            let imported = root_map(text)?;
            for (family, name) in define_types(&imported, registry)? {
                out.push(ImportedType {
                    family,
                    name,
                    via: path.clone(),
                });
            }
            load_imports(&imported, imports, registry, seen, &path, out)
        };
        load().map_err(|e| in_import(e, &import.url, import.pos))?;
    }
    Ok(())
}

fn opt_text(node: Option<&Node>) -> Option<String> {
    node.and_then(Node::scalar_text)
}

fn parse_requirement(
    node_name: &str,
    item: &Node,
    names: &HashSet<String>,
    registry: &Registry,
) -> Result<Requirement, Error> {
    let entries = match item.as_map() {
        Some(e) if e.len() == 1 => e,
        _ => {
            return Err(Error::at(
                item.pos,
                format!(
                    "a requirement of node '{node_name}' must be a single 'name: target' entry"
                ),
            ))
        }
    };
    let (name, value) = &entries[0];
    let requirement = match &value.value {
        Yaml::Str(target) => Requirement {
            name: name.text.clone(),
            node: Some(target.clone()),
            capability: None,
            relationship: None,
        },
        Yaml::Map(_) => Requirement {
            name: name.text.clone(),
            node: opt_text(value.get("node")),
            capability: opt_text(value.get("capability")),
            relationship: value
                .get("relationship")
                .and_then(|r| r.scalar_text().or_else(|| opt_text(r.get("type")))),
        },
        _ => {
            return Err(Error::at(
                value.pos,
                format!(
                    "requirement '{}' of node '{node_name}' must name a node or be a map",
                    name.text
                ),
            ))
        }
    };
    if let Some(target) = &requirement.node {
        if !names.contains(target) && !registry.contains(Family::Node, target) {
            let pos = value.get("node").map(|n| n.pos).unwrap_or(value.pos);
            return Err(Error::at(
                pos,
                format!(
                    "requirement '{}' of node '{node_name}' names unknown node '{target}'",
                    name.text
                ),
            ));
        }
    }
    Ok(requirement)
}

/// Reports `get_input` of undeclared inputs anywhere below `node`.
fn check_get_input(node: &Node, declared: &HashSet<&str>) -> Result<(), Error> {
    match &node.value {
        Yaml::Map(entries) => {
            if let [(key, arg)] = entries.as_slice() {
                if key.text == "get_input" {
                    let name = match &arg.value {
                        Yaml::Str(s) => Some(s.clone()),
                        Yaml::Seq(items) => {
                            items.first().and_then(Node::as_str).map(str::to_string)
                        }
                        _ => None,
                    };
                    let name =
                        name.ok_or_else(|| Error::at(arg.pos, "get_input needs an input name"))?;
                    if !declared.contains(name.as_str()) {
                        return Err(Error::at(
                            arg.pos,
                            format!("get_input refers to undeclared input '{name}'"),
                        ));
                    }
                    return Ok(());
                }
            }
            entries
                .iter()
                .try_for_each(|(_, v)| check_get_input(v, declared))
        }
        Yaml::Seq(items) => items.iter().try_for_each(|v| check_get_input(v, declared)),
        _ => Ok(()),
    }
}

/// Refuses a literal instance count above [`MAX_INSTANCES`], where it is written.
fn check_literal_counts(node_name: &str, def: &Node) -> Result<(), Error> {
    let Some(props) = def
        .get("capabilities")
        .and_then(|c| c.get("scalable"))
        .and_then(|s| s.get("properties"))
    else {
        return Ok(());
    };
    for key in COUNT_PROPERTIES {
        if let Some(value) = props.get(key) {
            if let Some(count) = literal_count(&value.to_json()) {
                if count > u64::from(MAX_INSTANCES) {
                    return Err(Error::at(
                        value.pos,
                        format!(
                            "node template '{node_name}' asks for {count} instances, more than {MAX_INSTANCES}"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Template {
    /// Parses a template that has no imports (or whose imports are not needed).
    pub fn parse(src: &str) -> Result<Self, Error> {
        Self::parse_with_imports(src, &HashMap::new())
    }

    /// Parses a template; `imports` holds the text of every (transitive) import by
    /// its URL as written.
    pub fn parse_with_imports(src: &str, imports: &HashMap<String, String>) -> Result<Self, Error> {
        let root = root_map(src)?;
        let version_node = root
            .get("tosca_definitions_version")
            .ok_or_else(|| Error::at(root.pos, "'tosca_definitions_version' is missing"))?;
        let version = version_node
            .as_str()
            .ok_or_else(|| {
                Error::at(
                    version_node.pos,
                    "'tosca_definitions_version' must be a string",
                )
            })?
            .to_string();
        if !SUPPORTED_VERSIONS.contains(&version.as_str()) {
            return Err(Error::at(
                version_node.pos,
                format!(
                    "unsupported tosca_definitions_version '{version}' (supported: {})",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        let metadata = match root.get("metadata") {
            None => Map::new(),
            Some(m) if m.value == Yaml::Null => Map::new(),
            Some(m) => match m.to_json() {
                Value::Object(map) => map,
                _ => return Err(Error::at(m.pos, "'metadata' must be a mapping")),
            },
        };
        let imports_list = imports_in(&root)?;
        let mut registry = Registry::normative();
        let local = define_types(&root, &mut registry)?;
        let mut seen = HashSet::new();
        let mut imported = Vec::new();
        load_imports(&root, imports, &mut registry, &mut seen, &[], &mut imported)?;
        // The template's own types first, in document order, then the imported ones
        // in import order: the same template always reports the same problem.
        for (family, name) in &local {
            registry.check_type(*family, name)?;
        }
        for t in &imported {
            registry.check_type(t.family, &t.name).map_err(|e| {
                t.via
                    .iter()
                    .rev()
                    .fold(e, |e, (url, pos)| in_import(e, url, *pos))
            })?;
        }

        let topology = root.get("topology_template");
        if let Some(t) = topology {
            if t.as_map().is_none() && t.value != Yaml::Null {
                return Err(Error::at(t.pos, "'topology_template' must be a mapping"));
            }
        }
        let section = |name: &str| {
            topology
                .and_then(|t| t.get(name))
                .filter(|n| n.value != Yaml::Null)
        };

        let mut inputs = Vec::new();
        if let Some(node) = section("inputs") {
            let entries = node
                .as_map()
                .ok_or_else(|| Error::at(node.pos, "'inputs' must be a mapping"))?;
            for (name, def) in entries {
                if def.as_map().is_none() {
                    return Err(Error::at(
                        def.pos,
                        format!("input '{}' must be a mapping with a 'type'", name.text),
                    ));
                }
                let what = format!("input '{}'", name.text);
                let schema = parse_schema(def, &registry, &what)?;
                let default = def
                    .get("default")
                    .filter(|d| d.value != Yaml::Null)
                    .map(Node::to_json);
                let required = match def.get("required") {
                    None => true,
                    Some(n) => match n.value {
                        Yaml::Bool(b) => b,
                        _ => {
                            return Err(Error::at(
                                n.pos,
                                format!("'required' of {what} must be true or false"),
                            ))
                        }
                    },
                };
                if let Some(d) = &default {
                    let mut problems = Vec::new();
                    check(
                        d,
                        &schema,
                        &registry,
                        "",
                        &format!("the default of {what}"),
                        &mut problems,
                    );
                    if let Some(problem) = problems.first() {
                        let pos = def.get("default").map(|n| n.pos).unwrap_or(def.pos);
                        return Err(Error::at(pos, problem.message.clone()));
                    }
                }
                inputs.push(InputDef {
                    name: name.text.clone(),
                    schema,
                    description: opt_text(def.get("description")),
                    required,
                    default,
                    pos: name.pos,
                });
            }
        }
        let declared: HashSet<&str> = inputs.iter().map(|i| i.name.as_str()).collect();

        let mut node_templates = Vec::new();
        if let Some(node) = section("node_templates") {
            let entries = node
                .as_map()
                .ok_or_else(|| Error::at(node.pos, "'node_templates' must be a mapping"))?;
            let names: HashSet<String> = entries.iter().map(|(k, _)| k.text.clone()).collect();
            for (name, def) in entries {
                if def.as_map().is_none() {
                    return Err(Error::at(
                        def.pos,
                        format!("node template '{}' must be a mapping", name.text),
                    ));
                }
                let type_node = def.get("type").ok_or_else(|| {
                    Error::at(
                        name.pos,
                        format!("node template '{}' has no 'type'", name.text),
                    )
                })?;
                let written = type_node.as_str().ok_or_else(|| {
                    Error::at(
                        type_node.pos,
                        format!("the type of node template '{}' must be a name", name.text),
                    )
                })?;
                if !registry.contains(Family::Node, written) {
                    return Err(Error::at(
                        type_node.pos,
                        format!(
                            "node template '{}' has unknown node type '{written}'",
                            name.text
                        ),
                    ));
                }
                let as_map = |key: &str| -> Result<Map<String, Value>, Error> {
                    match def.get(key) {
                        None => Ok(Map::new()),
                        Some(n) if n.value == Yaml::Null => Ok(Map::new()),
                        Some(n) => match n.to_json() {
                            Value::Object(m) => Ok(m),
                            _ => Err(Error::at(
                                n.pos,
                                format!(
                                    "'{key}' of node template '{}' must be a mapping",
                                    name.text
                                ),
                            )),
                        },
                    }
                };
                let mut requirements = Vec::new();
                if let Some(reqs) = def.get("requirements").filter(|n| n.value != Yaml::Null) {
                    let items = reqs.as_seq().ok_or_else(|| {
                        Error::at(
                            reqs.pos,
                            format!(
                                "'requirements' of node template '{}' must be a list",
                                name.text
                            ),
                        )
                    })?;
                    for item in items {
                        requirements.push(parse_requirement(&name.text, item, &names, &registry)?);
                    }
                }
                check_get_input(def, &declared)?;
                check_literal_counts(&name.text, def)?;
                node_templates.push(NodeTemplate {
                    name: name.text.clone(),
                    node_type: registry.resolve(Family::Node, written),
                    properties: as_map("properties")?,
                    capabilities: as_map("capabilities")?,
                    requirements,
                    pos: name.pos,
                });
            }
        }

        let mut outputs = Vec::new();
        if let Some(node) = section("outputs") {
            let entries = node
                .as_map()
                .ok_or_else(|| Error::at(node.pos, "'outputs' must be a mapping"))?;
            for (name, def) in entries {
                check_get_input(def, &declared)?;
                outputs.push(Output {
                    name: name.text.clone(),
                    description: opt_text(def.get("description")),
                    value: def.get("value").map(Node::to_json).unwrap_or(Value::Null),
                });
            }
        }
        let mut policies = Vec::new();
        if let Some(node) = section("policies") {
            check_get_input(node, &declared)?;
            match node.to_json() {
                Value::Array(items) => policies = items,
                _ => return Err(Error::at(node.pos, "'policies' must be a list")),
            }
        }

        Ok(Self {
            version,
            metadata,
            description: opt_text(root.get("description")),
            imports: imports_list,
            registry,
            inputs,
            node_templates,
            outputs,
            policies,
            root,
        })
    }

    /// `tosca_definitions_version`.
    pub fn tosca_definitions_version(&self) -> &str {
        &self.version
    }

    /// Every metadata entry.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    fn meta_text(&self, key: &str) -> Option<String> {
        let from_meta = self.metadata.get(key).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        // TOSCA 1.0 also allows these keys at the top level.
        from_meta
            .or_else(|| self.root.get(key).and_then(Node::scalar_text))
            .filter(|s| !s.trim().is_empty())
    }

    /// `metadata.template_name`.
    pub fn template_name(&self) -> Option<String> {
        self.meta_text("template_name")
    }

    /// `metadata.template_version`.
    pub fn template_version(&self) -> Option<String> {
        self.meta_text("template_version")
    }

    /// `metadata.target_provider_type`.
    pub fn target_provider_type(&self) -> Option<String> {
        self.meta_text("target_provider_type")
    }

    /// `description`.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The imports declared by the template itself.
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }

    /// Input definitions in document order.
    pub fn inputs(&self) -> &[InputDef] {
        &self.inputs
    }

    /// Node templates in document order.
    pub fn node_templates(&self) -> &[NodeTemplate] {
        &self.node_templates
    }

    /// A node template by name.
    pub fn node_template(&self, name: &str) -> Option<&NodeTemplate> {
        self.node_templates.iter().find(|n| n.name == name)
    }

    /// Outputs.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// Policies as written.
    pub fn policies(&self) -> &[Value] {
        &self.policies
    }

    /// The type registry (normative, template and imported types).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether node type `name` is `ancestor` or derived from it.
    pub fn is_derived_from(&self, name: &str, ancestor: &str) -> bool {
        self.registry.is_derived_from(Family::Node, name, ancestor)
    }

    /// A node type and its ancestors, nearest first.
    pub fn ancestors(&self, name: &str) -> Vec<String> {
        self.registry.ancestors(Family::Node, name)
    }

    /// Whether a node template is a compute node (derived from tosca.nodes.Compute).
    pub fn is_compute_node(&self, node_name: &str) -> bool {
        self.node_template(node_name)
            .is_some_and(|n| self.is_derived_from(&n.node_type, "tosca.nodes.Compute"))
    }

    /// Validates inputs: every violation at once, or the inputs with defaults applied
    /// and values normalised.
    pub fn validate_inputs(
        &self,
        given: &Map<String, Value>,
    ) -> Result<ResolvedInputs, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut resolved = Map::new();
        for name in given.keys() {
            if !self.inputs.iter().any(|i| &i.name == name) {
                violations.push(Violation {
                    pointer: format!("/{}", escape(name)),
                    message: format!("input '{name}' is not declared by the template"),
                });
            }
        }
        for input in &self.inputs {
            let pointer = format!("/{}", escape(&input.name));
            match given.get(&input.name) {
                Some(value) => {
                    if let Some(v) = check(
                        value,
                        &input.schema,
                        &self.registry,
                        &pointer,
                        &format!("input '{}'", input.name),
                        &mut violations,
                    ) {
                        resolved.insert(input.name.clone(), v);
                    }
                }
                None => match &input.default {
                    Some(default) => {
                        let mut ignored = Vec::new();
                        let v = check(
                            default,
                            &input.schema,
                            &self.registry,
                            &pointer,
                            "",
                            &mut ignored,
                        )
                        .unwrap_or_else(|| default.clone());
                        resolved.insert(input.name.clone(), v);
                    }
                    None if input.required => violations.push(Violation {
                        pointer,
                        message: format!("input '{}' is required and has no default", input.name),
                    }),
                    None => {}
                },
            }
        }
        let resolved = ResolvedInputs(resolved);
        for node in &self.node_templates {
            if let Some((count, Some(input))) = self.count_and_source(&node.name, &resolved) {
                if count > u64::from(MAX_INSTANCES) {
                    violations.push(Violation {
                        pointer: format!("/{}", escape(&input)),
                        message: format!(
                            "input '{input}' would give node '{}' {count} instances, more than {MAX_INSTANCES}",
                            node.name
                        ),
                    });
                }
            }
        }
        if violations.is_empty() {
            Ok(resolved)
        } else {
            Err(violations)
        }
    }
}

/// Inputs after validation: defaults applied, values normalised to their types.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedInputs(pub Map<String, Value>);

impl ResolvedInputs {
    /// The values.
    pub fn values(&self) -> &Map<String, Value> {
        &self.0
    }
}
