//! The login banner: `/etc/motd` on every host names the closet's GPUs and how to ask
//! Slurm for them. On only when the inventory has a `[motd]` table:
//!
//! ```toml
//! [motd]
//! note = "Questions: #lab-cluster"   # optional, one line of plain text
//! ```
//!
//! The GPU list comes from the inventory's `gpus` (checked against `nvidia-smi` by the
//! Slurm concern), so the banner never changes unless the inventory does.

use super::{Concern, Section, SectionCheck, Shipped};
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use toml::Spanned;

/// The longest note the banner takes.
pub const NOTE_MAX: usize = 200;

/// The `motd` concern.
pub struct Motd;

/// The validated `[motd]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MotdSection {
    pub note: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    motd: Option<RawMotd>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMotd {
    note: Option<Spanned<String>>,
}

/// One line of the banner's GPU list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuLine {
    pub host: String,
    pub count: u32,
    pub model: String,
    /// The GRES type researchers type (`a100`).
    pub gres: String,
}

/// What the template sees as `motd`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Banner {
    pub note: Option<String>,
    pub gpus: Vec<GpuLine>,
    pub gpu_total: u32,
}

/// The banner's values, or `None` without a `[motd]` table.
pub fn banner(inventory: &Inventory) -> Option<Banner> {
    let section = inventory.sections.get::<MotdSection>("motd")?;
    let gpus: Vec<GpuLine> = inventory
        .hosts
        .iter()
        .filter_map(|h| {
            let spec = h.gpus.as_ref()?;
            Some(GpuLine {
                host: h.name.clone(),
                count: spec.count,
                model: spec.model.clone(),
                gres: crate::gpu::model_by_key(&spec.model)
                    .map_or("gpu", |m| m.gres_type)
                    .to_string(),
            })
        })
        .collect();
    Some(Banner {
        note: section.note.clone(),
        gpu_total: gpus.iter().map(|g| g.count).sum(),
        gpus,
    })
}

impl Concern for Motd {
    fn name(&self) -> &'static str {
        "motd"
    }
    fn section(&self) -> Option<&'static str> {
        Some("motd")
    }
    fn read_section(&self, check: &mut SectionCheck) -> Option<Section> {
        let raw = match toml::from_str::<Document>(check.source()) {
            Ok(doc) => doc.motd?,
            Err(e) => {
                check.toml_error(&e);
                return None;
            }
        };
        let note = raw.note.map(|n| {
            let text = n.get_ref();
            if text.chars().any(char::is_control) || text.chars().count() > NOTE_MAX {
                check.at(
                    n.span(),
                    format!("motd note must be one line of at most {NOTE_MAX} characters"),
                );
            }
            text.clone()
        });
        Some(Arc::new(MotdSection { note }))
    }
    fn playbooks(&self) -> &'static [Shipped] {
        &[("60-motd.toml", include_str!("60-motd.toml"))]
    }
    fn templates(&self) -> &'static [Shipped] {
        &[("motd.j2", include_str!("motd.j2"))]
    }
    fn conditions(&self) -> &'static [&'static str] {
        &["motd"]
    }
    fn condition(&self, _name: &str, inventory: &Inventory) -> bool {
        banner(inventory).is_some()
    }
    fn template_values<'a>(
        &self,
        inventory: &'a Inventory,
        _facts: &'a ClusterFacts,
    ) -> Vec<super::TemplateValue<'a>> {
        vec![(
            "motd",
            Box::new(|| minijinja::Value::from_serialize(banner(inventory))),
        )]
    }
}

#[cfg(test)]
mod tests {
    use crate::desired::{host_steps, Inputs, Secrets};
    use crate::facts::ClusterFacts;
    use crate::inventory::{Inventory, InventoryError};
    use crate::playbook::Playbooks;
    use crate::resource::Resource;
    use std::path::Path;

    const HOSTS: &str = r#"
[cluster]
name = "closet"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "login"]

[[host]]
name = "node1"
address = "10.0.0.11"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }

[[host]]
name = "node2"
address = "10.0.0.12"
roles = ["compute"]
gpus = { model = "rtx-4090", count = 2 }
"#;

    fn parse(text: &str) -> Result<Inventory, InventoryError> {
        Inventory::parse(Path::new("inventory.toml"), text)
    }

    /// `/etc/motd` as planned for `host`, if a step manages it.
    fn motd_of(inventory: &Inventory, host: &str) -> Option<String> {
        let playbooks = Playbooks::load(None).unwrap();
        let secrets = Secrets::new();
        let inputs = Inputs {
            inventory,
            playbooks: &playbooks,
            secrets: &secrets,
        };
        let steps = host_steps(
            &inputs,
            inventory.host(host).unwrap(),
            &ClusterFacts::default(),
        )
        .unwrap();
        steps
            .iter()
            .flat_map(|s| &s.resources)
            .find_map(|r| match r {
                Resource::File(f) if f.path == "/etc/motd" => {
                    Some(String::from_utf8(f.content.clone()).unwrap())
                }
                _ => None,
            })
    }

    #[test]
    fn the_banner_lists_every_hosts_gpus_and_the_note() {
        let inv = parse(&format!("{HOSTS}\n[motd]\nnote = \"Questions: #closet\"\n")).unwrap();
        let text = motd_of(&inv, "head").expect("head gets a motd");
        assert_eq!(motd_of(&inv, "node2").as_deref(), Some(text.as_str()));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn without_a_motd_table_no_host_gets_one() {
        let inv = parse(HOSTS).unwrap();
        assert!(inv.sections.get::<super::MotdSection>("motd").is_none());
        for h in ["head", "node1", "node2"] {
            assert_eq!(motd_of(&inv, h), None, "{h}");
        }
    }

    #[test]
    fn an_empty_motd_table_turns_it_on_without_a_note() {
        let inv = parse(&format!("{HOSTS}\n[motd]\n")).unwrap();
        let text = motd_of(&inv, "node1").unwrap();
        assert!(text.contains("GPUs (6), handed out by Slurm only:"), "{text}");
        assert!(!text.contains("Questions"), "{text}");
    }

    #[test]
    fn a_bad_section_is_refused_at_its_place_with_the_rest() {
        // The bad host name and the bad note are reported together, each at its place.
        let text = format!(
            "{}\n[motd]\nnote = \"two\\nlines\"\n",
            HOSTS.replace("name = \"node2\"", "name = \"Node2\"")
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("inventory.toml:17:8: host name `Node2` does not match"), "{e}");
        assert!(
            e.contains("inventory.toml:23:8: motd note must be one line of at most 200 characters"),
            "{e}"
        );
        let e = parse(&format!("{HOSTS}\n[motd]\nbanner = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inventory.toml:23:1: unknown field `banner`, expected `note`"), "{e}");
        let e = parse(&format!("{HOSTS}\n[motd]\nnote = 5\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inventory.toml:23:8: invalid type: integer `5`, expected a string"), "{e}");
    }

    #[test]
    fn an_unknown_section_is_still_refused() {
        let e = parse(&format!("{HOSTS}\n[motto]\nnote = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inventory.toml:22:2: unknown field `motto`, expected one of `cluster`"), "{e}");
        assert!(e.contains("`timeouts`, `motd`"), "{e}");
    }
}
