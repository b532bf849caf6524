//! GPU models: one table from what `nvidia-smi` calls a card to the inventory's model
//! key, Slurm's GRES type string and the board power the preflight checks budget for.
//!
//! The GRES type is what researchers type (`--gres=gpu:a100-80gb:2`) and what SkyPilot
//! matches its GPU names against (`sky launch --gpus A100-80GB:1`), so it is SkyPilot's
//! canonical name for the card in lower case (`sky/utils/gpu_names.py`
//! `CANONICAL_GPU_NAMES`: `A100-80GB`, `A100`, `H100`, `L40S`, `RTX6000-Ada`, `A6000`,
//! `V100-32GB`, `V100`, ...; SkyPilot compares case-insensitively), or its catalogue's
//! name where that list has none (`RTX4090`). Memory variants keep their suffix: a
//! bare `a100` is shown as `A100`, SkyPilot's name for the 40 GB card, and its Slurm
//! matching is fuzzy both ways (`A100-80GB` ~ `a100`), so only the suffix keeps an
//! 80 GB request off 40 GB cards and the pools apart in `sky show-gpus`. The form factor
//! (SXM4, PCIe) is not part of the name. The inventory key is precise enough to pick the
//! right power figure.

/// One row of the model table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuModel {
    /// Inventory key, e.g. `a100-sxm4-80gb`.
    pub key: &'static str,
    /// The name `nvidia-smi --query-gpu=name` prints.
    pub smi_name: &'static str,
    /// Slurm GRES type (`Gres=gpu:<type>:<count>`).
    pub gres_type: &'static str,
    /// Maximum board power in watts (TDP / TGP).
    pub max_watts: u32,
}

const fn m(
    key: &'static str,
    smi_name: &'static str,
    gres_type: &'static str,
    max_watts: u32,
) -> GpuModel {
    GpuModel {
        key,
        smi_name,
        gres_type,
        max_watts,
    }
}

/// The table. Board powers from NVIDIA's data sheets (see docs/reference).
pub const MODELS: &[GpuModel] = &[
    m("a100-sxm4-80gb", "NVIDIA A100-SXM4-80GB", "a100-80gb", 400),
    m("a100-sxm4-40gb", "NVIDIA A100-SXM4-40GB", "a100", 400),
    m("a100-pcie-80gb", "NVIDIA A100 80GB PCIe", "a100-80gb", 300),
    m("a100-pcie-40gb", "NVIDIA A100-PCIE-40GB", "a100", 250),
    m("h100-sxm", "NVIDIA H100 80GB HBM3", "h100", 700),
    m("h100-pcie", "NVIDIA H100 PCIe", "h100", 350),
    m("h100-nvl", "NVIDIA H100 NVL", "h100", 400),
    m("l40s", "NVIDIA L40S", "l40s", 350),
    m("l40", "NVIDIA L40", "l40", 300),
    m(
        "rtx-6000-ada",
        "NVIDIA RTX 6000 Ada Generation",
        "rtx6000-ada",
        300,
    ),
    m("rtx-a6000", "NVIDIA RTX A6000", "a6000", 300),
    m("rtx-4090", "NVIDIA GeForce RTX 4090", "rtx4090", 450),
    m("rtx-3090", "NVIDIA GeForce RTX 3090", "rtx3090", 350),
    m("v100-sxm2", "Tesla V100-SXM2-32GB", "v100-32gb", 300),
    m("v100-sxm2-16gb", "Tesla V100-SXM2-16GB", "v100", 300),
    m("v100-pcie", "Tesla V100-PCIE-32GB", "v100-32gb", 250),
    m("v100-pcie-16gb", "Tesla V100-PCIE-16GB", "v100", 250),
];

/// Look a model up by its inventory key.
pub fn model_by_key(key: &str) -> Option<&'static GpuModel> {
    MODELS.iter().find(|g| g.key == key)
}

/// Look a model up by the name nvidia-smi reports (exact, ignoring case and spaces).
pub fn model_by_smi_name(name: &str) -> Option<&'static GpuModel> {
    let norm = |s: &str| s.trim().to_ascii_lowercase();
    MODELS.iter().find(|g| norm(g.smi_name) == norm(name))
}

/// Every inventory key, for error messages.
pub fn model_keys() -> Vec<&'static str> {
    MODELS.iter().map(|g| g.key).collect()
}

/// The GRES type for a card name nvidia-smi reported, falling back to a sanitized
/// lower-case form of the name for cards the table does not know.
pub fn gres_type_for_smi_name(name: &str) -> String {
    match model_by_smi_name(name) {
        Some(m) => m.gres_type.to_string(),
        None => name
            .trim()
            .trim_start_matches("NVIDIA ")
            .trim_start_matches("GeForce ")
            .trim_start_matches("Tesla ")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_smi_names_map_to_gres_types_and_keys() {
        let cases = [
            ("NVIDIA A100-SXM4-80GB", "a100-80gb", "a100-sxm4-80gb", 400),
            ("NVIDIA GeForce RTX 4090", "rtx4090", "rtx-4090", 450),
            ("NVIDIA H100 80GB HBM3", "h100", "h100-sxm", 700),
            ("NVIDIA L40S", "l40s", "l40s", 350),
            (
                "NVIDIA RTX 6000 Ada Generation",
                "rtx6000-ada",
                "rtx-6000-ada",
                300,
            ),
            ("Tesla V100-SXM2-32GB", "v100-32gb", "v100-sxm2", 300),
            ("Tesla V100-PCIE-32GB", "v100-32gb", "v100-pcie", 250),
            ("NVIDIA A100-PCIE-40GB", "a100", "a100-pcie-40gb", 250),
        ];
        for (smi, gres, key, watts) in cases {
            let m = model_by_smi_name(smi).unwrap_or_else(|| panic!("{smi} missing"));
            assert_eq!(
                (m.gres_type, m.key, m.max_watts),
                (gres, key, watts),
                "{smi}"
            );
            assert_eq!(gres_type_for_smi_name(smi), gres);
        }
    }

    #[test]
    fn unknown_cards_get_a_sanitized_gres_type() {
        assert_eq!(gres_type_for_smi_name("NVIDIA GeForce RTX 5090"), "rtx5090");
        assert!(model_by_smi_name("NVIDIA GeForce RTX 5090").is_none());
    }

    /// SkyPilot 0.14.1's `CANONICAL_GPU_NAMES` (sky/utils/gpu_names.py) and, for cards
    /// that list lacks, the name its catalogue uses: every GRES type is one of them in
    /// lower case, so `sky show-gpus` shows the canonical name and `--gpus NAME:N`
    /// resolves to the type exactly.
    const SKYPILOT_NAMES: &[&str] = &[
        "A100-80GB",
        "A100",
        "H100",
        "L40S",
        "L40",
        "RTX6000-Ada",
        "A6000",
        "V100-32GB",
        "V100",
        "RTX4090",
        "RTX3090",
    ];

    #[test]
    fn every_gres_type_is_a_skypilot_gpu_name_in_lower_case() {
        for m in MODELS {
            assert!(
                SKYPILOT_NAMES
                    .iter()
                    .any(|n| n.to_ascii_lowercase() == m.gres_type),
                "{}: GRES type {} is not a SkyPilot name",
                m.key,
                m.gres_type
            );
        }
    }

    #[test]
    fn the_memory_variant_is_part_of_the_gres_type() {
        let gres = |k: &str| model_by_key(k).unwrap().gres_type;
        assert_eq!(gres("a100-sxm4-80gb"), "a100-80gb");
        assert_eq!(gres("a100-pcie-80gb"), "a100-80gb");
        assert_eq!(gres("a100-sxm4-40gb"), "a100");
        assert_eq!(gres("a100-pcie-40gb"), "a100");
        assert_eq!(gres("v100-sxm2"), "v100-32gb");
        assert_eq!(gres("v100-pcie-16gb"), "v100");
        assert_eq!(gres("rtx-4090"), "rtx4090");
    }

    #[test]
    fn keys_are_unique() {
        let mut keys = model_keys();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), MODELS.len());
    }
}
