//! `cargo xtask models`: the model zoo with parameter counts, one line per model and class
//! count: `<name> <classes> <params>`.

use anyhow::{Context, Result};
use clap::Args;
use sal_models::{Architecture, ModelConfig};

/// Lists the architectures with their trainable parameter counts (BatchNorm running statistics
/// excluded, as the papers count). Counting reads parameter shapes only, so it is instant.
#[derive(Args)]
pub struct ModelsArgs {
    /// Architectures to list (default: every architecture the papers use). Any valid name
    /// works, e.g. `wrn-40-4` or `pyramidnet272-a200`.
    architectures: Vec<String>,
    /// Class counts to list each architecture with (default: 10 and 100, plus 1000 for the
    /// ImageNet ResNets).
    #[arg(long, value_delimiter = ',')]
    classes: Vec<usize>,
    /// Input channels (3 = RGB).
    #[arg(long, default_value_t = 3)]
    in_channels: usize,
    /// Base width (default: each architecture's reference width).
    #[arg(long)]
    width: Option<usize>,
}

pub fn run(args: ModelsArgs) -> Result<()> {
    let architectures: Vec<Architecture> = if args.architectures.is_empty() {
        Architecture::all().to_vec()
    } else {
        args.architectures
            .iter()
            .map(|name| name.parse().with_context(|| format!("argument `{name}`")))
            .collect::<Result<_>>()?
    };
    for architecture in architectures {
        let classes = if !args.classes.is_empty() {
            args.classes.clone()
        } else if matches!(architecture, Architecture::ResNet(_)) {
            vec![10, 100, 1000]
        } else {
            vec![10, 100]
        };
        for num_classes in classes {
            let config = ModelConfig::new(architecture, num_classes)
                .with_in_channels(args.in_channels)
                .with_base_width(args.width);
            let params = config
                .num_trainable_params()
                .with_context(|| format!("{architecture} with {num_classes} classes"))?;
            println!("{architecture} {num_classes} {params}");
        }
    }
    Ok(())
}
