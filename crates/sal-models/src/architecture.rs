//! Which network: the architecture names used by configs and the command line.
//!
//! Every architecture has one canonical name (`Display`), which `FromStr` and serde read back:
//! `cifar-resnet18`, `resnet50`, `preact-resnet101`, `wrn-28-10`, `pyramidnet200-a240`, ...
//! Wide ResNets and PyramidNets are families with free parameters, so any valid depth, widening
//! factor or alpha parses (`wrn-40-4`, `pyramidnet272-a200`); [`Architecture::all`] lists the
//! ones the three papers use.

use crate::regnet::RegNetLayout;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The five depths of He et al.'s ResNet table (CVPR 2016, Table 1), shared by the CIFAR,
/// ImageNet and pre-activation variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResNetDepth {
    /// BasicBlocks `[2, 2, 2, 2]`.
    D18,
    /// BasicBlocks `[3, 4, 6, 3]`.
    D34,
    /// Bottlenecks `[3, 4, 6, 3]`.
    D50,
    /// Bottlenecks `[3, 4, 23, 3]`.
    D101,
    /// Bottlenecks `[3, 8, 36, 3]`.
    D152,
}

impl ResNetDepth {
    /// Every depth, shallowest first.
    pub const ALL: [ResNetDepth; 5] = [Self::D18, Self::D34, Self::D50, Self::D101, Self::D152];

    /// The number in the network's name (18, 34, ...).
    pub fn layers(self) -> usize {
        match self {
            Self::D18 => 18,
            Self::D34 => 34,
            Self::D50 => 50,
            Self::D101 => 101,
            Self::D152 => 152,
        }
    }

    /// Residual blocks per stage.
    pub fn blocks_per_stage(self) -> [usize; 4] {
        match self {
            Self::D18 => [2, 2, 2, 2],
            Self::D34 | Self::D50 => [3, 4, 6, 3],
            Self::D101 => [3, 4, 23, 3],
            Self::D152 => [3, 8, 36, 3],
        }
    }

    /// Whether the stages are made of bottleneck blocks (1x1-3x3-1x1, expansion 4) rather than
    /// basic blocks (3x3-3x3).
    pub fn is_bottleneck(self) -> bool {
        matches!(self, Self::D50 | Self::D101 | Self::D152)
    }

    fn from_layers(layers: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.layers() == layers)
    }
}

/// A network of the ResNet family, as the papers' tables name it.
///
/// Serialises as its canonical name (see the module docs), so a TOML config reads
/// `architecture = "wrn-28-10"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Architecture {
    /// ResNet for 32x32 inputs as in the SaliencyMix CIFAR code (`model/resnet.py`, the
    /// kuangliu/pytorch-cifar layout): 3x3 stem conv with stride 1, no max-pool, four stages.
    /// Name: `cifar-resnet<depth>`.
    CifarResNet(ResNetDepth),
    /// torchvision's ImageNet ResNet (He et al. 2016, v1.5: stride on the bottleneck's 3x3):
    /// 7x7 stride-2 stem and 3x3 stride-2 max-pool. Name: `resnet<depth>`.
    ResNet(ResNetDepth),
    /// Pre-activation ResNet (He et al., "Identity Mappings in Deep Residual Networks", ECCV
    /// 2016), the SalfMix/HybridMix networks, CIFAR layout. Name: `preact-resnet<depth>`.
    PreActResNet(ResNetDepth),
    /// Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016), xternalz/WideResNet-pytorch layout as
    /// vendored by SaliencyMix. Name: `wrn-<depth>-<widen>`; `(depth - 4) % 6 == 0`.
    WideResNet {
        /// Total depth d (28 in WRN-28-10).
        depth: usize,
        /// Widening factor k (10 in WRN-28-10).
        widen: usize,
    },
    /// PyramidNet (Han et al. 2017), CutMix's `pyramidnet.py`, CIFAR layout, additive widening.
    /// Name: `pyramidnet<depth>-a<alpha>` for bottleneck blocks (CutMix's default,
    /// `(depth - 2) % 9 == 0`), `pyramidnet<depth>-a<alpha>-basic` for basic blocks
    /// (`(depth - 2) % 6 == 0`).
    PyramidNet {
        /// Total depth (200 in PyramidNet-200).
        depth: usize,
        /// Total widening alpha: the last block is `alpha` channels wider than the stem.
        alpha: usize,
        /// Bottleneck (1x1-3x3-1x1, output x4) rather than basic (3x3-3x3) blocks.
        bottleneck: bool,
    },
    /// RegNetX-200MF (Radosavovic et al. 2020), SalfMix Table 6's "RegNet-200M", as
    /// yhhhli/RegNet-Pytorch builds it: `regnetx-200mf` (pycls's ImageNet layout, torchvision's
    /// `regnet_x_200mf`) and `cifar-regnetx-200mf` (stride 1 in the stem and first stage).
    RegNetX200MF(RegNetLayout),
}

/// An architecture name that does not parse, or names a network that cannot be built.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ArchitectureError {
    /// Not one of the known names or patterns.
    #[error("unknown architecture `{name}`; valid names: {}", valid_names())]
    Unknown {
        /// The name given.
        name: String,
    },
    /// A Wide ResNet whose depth or widening factor no WRN has.
    #[error(
        "invalid Wide ResNet `{name}`: the depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 40, ...) \
         and the widening factor at least 1"
    )]
    InvalidWideResNet {
        /// The name given.
        name: String,
    },
    /// A PyramidNet whose depth does not fit its block type.
    #[error(
        "invalid PyramidNet `{name}`: with bottleneck blocks the depth must be 9n+2 (110, 200, \
         272, ...), with basic blocks (`-basic`) 6n+2 (110, 116, ...), n >= 1"
    )]
    InvalidPyramidNet {
        /// The name given.
        name: String,
    },
}

fn valid_names() -> String {
    let listed: Vec<String> = Architecture::all().iter().map(|a| a.to_string()).collect();
    format!(
        "{}; and any wrn-<depth>-<widen> or pyramidnet<depth>-a<alpha>[-basic]",
        listed.join(", ")
    )
}

const PAPER_ARCHITECTURES: [Architecture; 21] = {
    use Architecture::*;
    use ResNetDepth::*;
    [
        CifarResNet(D18),
        CifarResNet(D34),
        CifarResNet(D50),
        CifarResNet(D101),
        CifarResNet(D152),
        ResNet(D18),
        ResNet(D34),
        ResNet(D50),
        ResNet(D101),
        ResNet(D152),
        PreActResNet(D18),
        PreActResNet(D34),
        PreActResNet(D50),
        PreActResNet(D101),
        PreActResNet(D152),
        // SaliencyMix's CIFAR code builds WRN-16-8 (SVHN) and WRN-28-10 (CIFAR).
        WideResNet {
            depth: 16,
            widen: 8,
        },
        WideResNet {
            depth: 28,
            widen: 10,
        },
        // SalfMix Table 6 (CutMix's PyramidNet-110, alpha 64, 1.7 M) and Saliency Grafting.
        PyramidNet {
            depth: 110,
            alpha: 64,
            bottleneck: true,
        },
        PyramidNet {
            depth: 200,
            alpha: 240,
            bottleneck: true,
        },
        // SalfMix Table 6.
        RegNetX200MF(RegNetLayout::Cifar),
        RegNetX200MF(RegNetLayout::ImageNet),
    ]
};

impl Architecture {
    /// The architectures the three papers use, in a fixed order (CIFAR ResNets, ImageNet
    /// ResNets, PreActResNets, Wide ResNets, PyramidNets, RegNets; shallow to deep).
    pub fn all() -> &'static [Architecture] {
        &PAPER_ARCHITECTURES
    }

    /// Checks a Wide ResNet's or PyramidNet's free parameters (the ResNets cannot be wrong).
    pub fn validate(&self) -> Result<(), ArchitectureError> {
        match *self {
            Self::WideResNet { depth, widen } => {
                if depth < 10 || (depth - 4) % 6 != 0 || widen == 0 {
                    return Err(ArchitectureError::InvalidWideResNet {
                        name: self.to_string(),
                    });
                }
            }
            Self::PyramidNet {
                depth,
                alpha: _,
                bottleneck,
            } => {
                let per_block = if bottleneck { 9 } else { 6 };
                if depth < 2 + per_block || (depth - 2) % per_block != 0 {
                    return Err(ArchitectureError::InvalidPyramidNet {
                        name: self.to_string(),
                    });
                }
            }
            Self::CifarResNet(_)
            | Self::ResNet(_)
            | Self::PreActResNet(_)
            | Self::RegNetX200MF(_) => {}
        }
        Ok(())
    }

    /// Dropout the reference code uses when the config leaves it unset: 0.3 for Wide ResNets
    /// (SaliencyMix `command.sh`, WRN paper §3), 0 for every other family (they have none).
    pub fn default_dropout(&self) -> f64 {
        match self {
            Self::WideResNet { .. } => 0.3,
            _ => 0.0,
        }
    }

    /// Width the reference code uses when the config leaves it unset: the stem's output
    /// channels. 64 for the ResNets and PreActResNets (their stages are 1x, 2x, 4x, 8x this);
    /// 16 for Wide ResNets (stages 1x, 2x, 4x this times the widening factor) and PyramidNets
    /// (the blocks then widen additively by alpha in total); 32 for RegNets (the stem only: the
    /// stages keep the design space's widths).
    pub fn default_base_width(&self) -> usize {
        match self {
            Self::CifarResNet(_) | Self::ResNet(_) | Self::PreActResNet(_) => 64,
            Self::WideResNet { .. } | Self::PyramidNet { .. } => 16,
            Self::RegNetX200MF(_) => 32,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::CifarResNet(d) => write!(f, "cifar-resnet{}", d.layers()),
            Self::ResNet(d) => write!(f, "resnet{}", d.layers()),
            Self::PreActResNet(d) => write!(f, "preact-resnet{}", d.layers()),
            Self::WideResNet { depth, widen } => write!(f, "wrn-{depth}-{widen}"),
            Self::PyramidNet {
                depth,
                alpha,
                bottleneck,
            } => {
                write!(f, "pyramidnet{depth}-a{alpha}")?;
                if !bottleneck {
                    f.write_str("-basic")?;
                }
                Ok(())
            }
            Self::RegNetX200MF(RegNetLayout::ImageNet) => f.write_str("regnetx-200mf"),
            Self::RegNetX200MF(RegNetLayout::Cifar) => f.write_str("cifar-regnetx-200mf"),
        }
    }
}

impl FromStr for Architecture {
    type Err = ArchitectureError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let unknown = || ArchitectureError::Unknown {
            name: name.to_string(),
        };
        let resnet_depth = |digits: &str| {
            parse_number(digits)
                .and_then(ResNetDepth::from_layers)
                .ok_or_else(unknown)
        };
        let architecture = if name == "regnetx-200mf" {
            Self::RegNetX200MF(RegNetLayout::ImageNet)
        } else if name == "cifar-regnetx-200mf" {
            Self::RegNetX200MF(RegNetLayout::Cifar)
        } else if let Some(rest) = name.strip_prefix("cifar-resnet") {
            Self::CifarResNet(resnet_depth(rest)?)
        } else if let Some(rest) = name.strip_prefix("preact-resnet") {
            Self::PreActResNet(resnet_depth(rest)?)
        } else if let Some(rest) = name.strip_prefix("resnet") {
            Self::ResNet(resnet_depth(rest)?)
        } else if let Some(rest) = name.strip_prefix("wrn-") {
            let (depth, widen) = rest.split_once('-').ok_or_else(unknown)?;
            Self::WideResNet {
                depth: parse_number(depth).ok_or_else(unknown)?,
                widen: parse_number(widen).ok_or_else(unknown)?,
            }
        } else if let Some(rest) = name.strip_prefix("pyramidnet") {
            let (rest, bottleneck) = match rest.strip_suffix("-basic") {
                Some(rest) => (rest, false),
                None => (rest, true),
            };
            let (depth, alpha) = rest.split_once("-a").ok_or_else(unknown)?;
            Self::PyramidNet {
                depth: parse_number(depth).ok_or_else(unknown)?,
                alpha: parse_number(alpha).ok_or_else(unknown)?,
                bottleneck,
            }
        } else {
            return Err(unknown());
        };
        architecture.validate()?;
        Ok(architecture)
    }
}

/// A plain decimal number: digits only, no sign, no leading zero (so every name has exactly one
/// spelling and `Display` round-trips).
fn parse_number(digits: &str) -> Option<usize> {
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'));
    if plain { digits.parse().ok() } else { None }
}

impl TryFrom<String> for Architecture {
    type Error = ArchitectureError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl From<Architecture> for String {
    fn from(architecture: Architecture) -> Self {
        architecture.to_string()
    }
}

#[cfg(test)]
impl Architecture {
    /// The `base_width` tests of every architecture build it with: small, so that the zoo builds
    /// and runs in seconds (PyramidNet keeps its reference stem: its width is mostly alpha).
    pub(crate) fn test_width(self) -> Option<usize> {
        match self {
            Self::PyramidNet { .. } | Self::RegNetX200MF(_) => None,
            Self::WideResNet { .. } => Some(2),
            _ => Some(4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_round_trips() {
        for architecture in Architecture::all() {
            let name = architecture.to_string();
            assert_eq!(
                name.parse::<Architecture>().as_ref(),
                Ok(architecture),
                "{name}"
            );
        }
    }

    #[test]
    fn the_issue_names_parse_to_the_intended_networks() {
        use Architecture::*;
        let cases = [
            ("cifar-resnet18", CifarResNet(ResNetDepth::D18)),
            ("resnet50", ResNet(ResNetDepth::D50)),
            ("preact-resnet101", PreActResNet(ResNetDepth::D101)),
            (
                "wrn-28-10",
                WideResNet {
                    depth: 28,
                    widen: 10,
                },
            ),
            (
                "pyramidnet200-a240",
                PyramidNet {
                    depth: 200,
                    alpha: 240,
                    bottleneck: true,
                },
            ),
            (
                "pyramidnet110-a48-basic",
                PyramidNet {
                    depth: 110,
                    alpha: 48,
                    bottleneck: false,
                },
            ),
            ("cifar-regnetx-200mf", RegNetX200MF(RegNetLayout::Cifar)),
            ("regnetx-200mf", RegNetX200MF(RegNetLayout::ImageNet)),
        ];
        for (name, expected) in cases {
            assert_eq!(name.parse::<Architecture>(), Ok(expected), "{name}");
        }
    }

    #[test]
    fn unknown_names_are_typed_errors_listing_the_valid_names() {
        for name in [
            "",
            "resnet",
            "resnet19",
            "resnet050",
            "cifar-resnet",
            "vgg16",
            "wrn-28",
            "wrn-28-x",
            "pyramidnet200",
            "ResNet50",
        ] {
            let err = name.parse::<Architecture>().unwrap_err();
            assert!(
                matches!(err, ArchitectureError::Unknown { .. }),
                "{name}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("cifar-resnet18") && message.contains("wrn-28-10"));
        }
    }

    #[test]
    fn impossible_family_members_are_rejected() {
        for name in ["wrn-27-10", "wrn-4-1", "wrn-28-0"] {
            assert!(matches!(
                name.parse::<Architecture>(),
                Err(ArchitectureError::InvalidWideResNet { .. })
            ));
        }
        // 116 = 6*19+2 fits basic blocks but not bottlenecks (9n+2).
        assert!(matches!(
            "pyramidnet116-a48".parse::<Architecture>(),
            Err(ArchitectureError::InvalidPyramidNet { .. })
        ));
        assert!("pyramidnet116-a48-basic".parse::<Architecture>().is_ok());
    }

    #[test]
    fn serde_uses_the_canonical_name() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Holder {
            architecture: Architecture,
        }
        let holder = Holder {
            architecture: Architecture::WideResNet {
                depth: 28,
                widen: 10,
            },
        };
        let text = toml::to_string(&holder).unwrap();
        assert_eq!(text.trim(), r#"architecture = "wrn-28-10""#);
        assert_eq!(toml::from_str::<Holder>(&text).unwrap(), holder);
        let bad = toml::from_str::<Holder>(r#"architecture = "wrn-29-10""#).unwrap_err();
        assert!(bad.to_string().contains("wrn-29-10"), "{bad}");
    }
}
