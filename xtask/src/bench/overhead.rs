//! `cargo xtask bench overhead`: what each mixing method adds to a training step, the
//! SaliencyMix paper's training-time comparison (Table 5: SaliencyMix +9.6 %, CutMix +7.2 % over
//! the baseline) on this stack.
//!
//! One process trains a CIFAR ResNet-18 for a fixed number of steps with every method and with
//! none, interleaved: every round runs one timed step of each case, in a fresh random order each
//! round, so drift in the machine's load hits every method alike and no case always follows the
//! same one (`--settle k` runs k untimed steps of a case right before its timed one, so that the
//! timed step follows a step of its own method, as in a training run). A step is exactly the
//! trainer's: `sal_train::step::Classifier`'s `TrainStep::step` (mixing, the saliency pass the
//! method needs, forward, soft-target cross-entropy, backward) and the optimizer step the Learner
//! makes (`TrainStep::optimize`: SGD, Nesterov momentum 0.9, weight decay 5e-4), on one model and
//! one optimizer that every case advances in turn. Batches are random images, fresh each round,
//! at epoch 100 (past every method's warm-up); round `r` is global step `r`, so every method
//! draws a fresh stream each round and, within a round, the methods draw the same one. Every
//! method mixes every batch (`prob = 1`).
//!
//! Each method is compared with the baseline (a plain step) and with its floor, the work the
//! method cannot avoid, measured as cases of their own: Saliency Grafting trains on the original
//! and the grafted images (`with_original = true`), so its floor is a plain step on a 2N batch
//! (its default takes the saliency from the originals' training forward; the `frozen-pass`
//! option, a separate inference pass and one 2N forward, is a row of its own);
//! SalfMix and HybridMix need the input gradient, so theirs is a plain step plus one forward of
//! the clean batch through a frozen clone of the model (no parameter gradients, inference
//! BatchNorm) and the backward to the input. After the rounds, each mixer alone is timed on one
//! clean batch with the saliency it needs, which splits a method's overhead into mixing and
//! model passes. Results: docs/benchmarks.md, "Training-step overhead of each method".

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::TrainStep;
use clap::{Args, ValueEnum};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use sal_core::targets::{LabelSmoothing, one_hot_targets};
use sal_core::{
    Augmentation, AugmentationConfig, BoxScope, CutMixConfig, CutoutConfig, DetectorChoice,
    FeatureMapSource, HybridMixConfig, KnownNormalization, MixBatch, MixupConfig, PairConfig,
    ResizeMixConfig, SalfMixConfig, SaliencyGraftingConfig, SaliencyInput, SaliencyMixConfig,
};
use sal_models::{Architecture, Model, ModelConfig, ResNetDepth};
use sal_train::loader::ImageBatch;
use sal_train::step::{Classifier, saliency_pass, soft_cross_entropy};

use super::measure::{self, Summary, verdict};
use super::models::sgd;

const CLASSES: usize = 10;
/// The recipe's learning rate.
const LR: f64 = 0.1;
/// The (1-based) epoch of every batch: past Saliency Grafting's 5 warm-up epochs and HybridMix's 1.
const EPOCH: usize = 100;
/// Untimed calls of each mixer before the timed ones.
const MIXER_WARMUP: usize = 2;
/// The quickstart's base width (experiments/quickstart.toml), which trains on Fashion-MNIST.
const QUICKSTART_WIDTH: usize = 8;

/// Options of `cargo xtask bench overhead`.
#[derive(Args)]
pub struct OverheadBench {
    /// Base widths of the CIFAR ResNet-18, one run each (64: the paper's; 8: the quickstart's).
    #[arg(long, value_delimiter = ',', default_values_t = [64, 8])]
    widths: Vec<usize>,
    /// Input of each width (one value: every width): `cifar` (3x32x32) or `fashion-mnist` (the
    /// quickstart's 28x28x1 images padded to 1x32x32). Default: `fashion-mnist` at the
    /// quickstart's width (8), `cifar` at any other.
    #[arg(long, value_enum, value_delimiter = ',')]
    inputs: Vec<Input>,
    /// Timed rounds at each width (one value: every width); a round is one step of every case.
    /// Default: 5 at width 32 and above, 30 below (a few minutes each on 2 cores).
    #[arg(long, value_delimiter = ',')]
    steps: Vec<usize>,
    /// Untimed steps of a case right before each of its timed ones (1: every timed step
    /// follows a step of the same method, as in a training run).
    #[arg(long, default_value_t = 0)]
    settle: usize,
    /// Untimed rounds first, at every width.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Images per step (Saliency Grafting and its floor train on twice as many).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// SaliencyMix's detectors, each with both box scopes: `fine-grained` (the config's
    /// default, on the host), `spectral-residual-device` (tensor ops on the batch's device), ...
    /// HybridMix v2's SaliencyMix uses the first.
    #[arg(long, value_delimiter = ',', default_value = "fine-grained,spectral-residual-device", value_parser = parse_detector)]
    detectors: Vec<DetectorChoice>,
    /// Timed calls of each mixer alone, after the rounds.
    #[arg(long, default_value_t = 20)]
    mixer_calls: usize,
    /// Timed calls of each model saliency pass alone (SalfMix's input gradient, Saliency
    /// Grafting's feature map), after the rounds.
    #[arg(long, default_value_t = 5)]
    pass_calls: usize,
    /// Threads of burn's CPU backend (RAYON_NUM_THREADS); default: the environment's, else
    /// every core.
    #[arg(long)]
    threads: Option<usize>,
    /// The run's seed: the model's initial weights, the data, the mixing streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep glibc's default allocator settings instead of its steady state (what `cargo xtask
    /// train` runs with).
    #[arg(long)]
    default_malloc: bool,
}

/// A `detector` of SaliencyMix's config, by its TOML name.
fn parse_detector(name: &str) -> Result<DetectorChoice, String> {
    serde_json::from_value(serde_json::Value::String(name.into())).map_err(|e| e.to_string())
}

/// The images a width trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Input {
    /// CIFAR-10: 3x32x32, CIFAR normalisation.
    Cifar,
    /// The quickstart's Fashion-MNIST: 28x28x1 padded to 32x32 (`pad_to = 32`), its
    /// normalisation.
    FashionMnist,
}

impl Input {
    fn channels(self) -> usize {
        match self {
            Self::Cifar => 3,
            Self::FashionMnist => 1,
        }
    }

    fn normalization(self) -> KnownNormalization {
        match self {
            Self::Cifar => KnownNormalization::Cifar,
            Self::FashionMnist => KnownNormalization::FashionMnist,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Cifar => "CIFAR 3x32x32",
            Self::FashionMnist => "Fashion-MNIST 28x28x1 padded to 1x32x32 (the quickstart's)",
        }
    }
}

/// One width's run, as the options give it.
#[derive(Clone, Copy)]
struct Setting {
    width: usize,
    input: Input,
    steps: usize,
}

impl OverheadBench {
    /// One setting per width, once the options are checked.
    fn settings(&self) -> Result<Vec<Setting>> {
        let n = self.widths.len();
        ensure!(
            n > 0 && self.batch > 0 && self.mixer_calls > 0 && self.pass_calls > 0,
            "--widths, --batch, --mixer-calls and --pass-calls must be given / positive"
        );
        ensure!(
            self.widths.iter().chain(&self.steps).all(|&v| v > 0),
            "widths and steps must be positive"
        );
        for (len, name) in [(self.inputs.len(), "inputs"), (self.steps.len(), "steps")] {
            ensure!(
                len <= 1 || len == n,
                "--{name} needs one value or one per width ({n})"
            );
        }
        // None given: the width's default; one: every width's.
        let pick = |values: &[usize], i: usize| values.get(i).or(values.first()).copied();
        let input = |i: usize| match self.inputs.get(i).or(self.inputs.first()) {
            Some(&input) => input,
            None if self.widths[i] == QUICKSTART_WIDTH => Input::FashionMnist,
            None => Input::Cifar,
        };
        Ok((0..n)
            .map(|i| Setting {
                width: self.widths[i],
                input: input(i),
                steps: pick(&self.steps, i).unwrap_or(if self.widths[i] >= 32 { 5 } else { 30 }),
            })
            .collect())
    }
}

pub fn run(args: OverheadBench) -> Result<()> {
    let settings = args.settings()?;
    let mut env = measure::malloc_env(!args.default_malloc);
    if let Some(threads) = args.threads {
        ensure!(threads > 0, "--threads must be positive");
        env.push((measure::THREADS_ENV, threads.to_string()));
    }
    if measure::rerun_with_env(&env)? {
        return Ok(());
    }
    let device = Device::flex().autodiff();
    println!("# Training-step overhead of each method (cargo xtask bench overhead)");
    println!("date: {}", measure::utc_now());
    println!(
        "CPU: {} ({} logical cores); burn flex, {} threads; allocator: {}",
        measure::cpu_model(),
        measure::cores(),
        measure::threads(),
        measure::malloc_settings()
    );
    println!("load average at start: {}", measure::load_average());
    for setting in settings {
        bench_setting(setting, &args, &device)?;
    }
    println!("\nload average at end: {}", measure::load_average());
    Ok(())
}

/// Which case's step a method is compared with besides the baseline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Floor {
    Baseline,
    DoubleBatch,
    InputGradient,
}

/// What one case's step does.
enum Work {
    /// The trainer's step without mixing, on N images (the baseline) or 2N.
    Plain { double: bool },
    /// A frozen-clone forward and input-gradient backward of the clean batch, then a plain step.
    InputGradientFloor,
    /// The trainer's step with this method.
    Method(Arc<Augmentation>),
}

/// One row of the report.
struct Case {
    label: String,
    work: Work,
    floor: Floor,
    /// The most the step may take over its floor, as a fraction (`0.01` = +1 %).
    target: Option<f64>,
}

impl Case {
    fn floor(label: &str, work: Work) -> Self {
        Self {
            label: label.into(),
            work,
            floor: Floor::Baseline,
            target: None,
        }
    }

    fn augmentation(&self) -> Option<Arc<Augmentation>> {
        match &self.work {
            Work::Method(a) => Some(a.clone()),
            _ => None,
        }
    }

    /// How many images its batch has, in units of `--batch`.
    fn batch_factor(&self) -> usize {
        match self.work {
            Work::Plain { double: true } => 2,
            _ => 1,
        }
    }
}

/// A method's row: label, config, floor, target.
type MethodRow = (String, AugmentationConfig, Floor, Option<f64>);

/// Every mixing method of [`AugmentationConfig::METHODS`], each mixing every batch, with its
/// floor and target.
fn methods(args: &OverheadBench) -> Result<Vec<MethodRow>> {
    use AugmentationConfig as A;
    use Floor::{Baseline, DoubleBatch, InputGradient};
    let saliencymix = |detector, scope| SaliencyMixConfig {
        detector,
        scope,
        prob: 1.0,
        ..Default::default()
    };
    let name = |detector: DetectorChoice| -> Result<String> {
        let value = serde_json::to_value(detector)?;
        Ok(value.as_str().unwrap_or("?").to_string())
    };
    let cutmix = CutMixConfig {
        prob: 1.0,
        ..Default::default()
    };
    let mut rows: Vec<MethodRow> = vec![
        (
            "mixup".into(),
            A::Mixup(MixupConfig::default()),
            Baseline,
            Some(0.01),
        ),
        ("cutmix".into(), A::CutMix(cutmix), Baseline, Some(0.01)),
        (
            "cutout".into(),
            A::Cutout(CutoutConfig::default()),
            Baseline,
            None,
        ),
        (
            "resizemix".into(),
            A::ResizeMix(ResizeMixConfig::default()),
            Baseline,
            None,
        ),
    ];
    for &detector in &args.detectors {
        let d = name(detector)?;
        rows.push((
            format!("saliencymix batch, {d}"),
            A::SaliencyMix(saliencymix(detector, BoxScope::Batch)),
            Baseline,
            Some(0.02),
        ));
        rows.push((
            format!("saliencymix per-sample, {d}"),
            A::SaliencyMix(saliencymix(detector, BoxScope::PerSample)),
            Baseline,
            Some(0.03),
        ));
    }
    let first = *args
        .detectors
        .first()
        .context("--detectors needs at least one")?;
    rows.extend([
        (
            "salfmix".into(),
            A::SalfMix(SalfMixConfig::default()),
            InputGradient,
            Some(0.03),
        ),
        (
            format!("hybridmix v2 (saliencymix batch, {})", name(first)?),
            A::HybridMix(HybridMixConfig::new(PairConfig::SaliencyMix(saliencymix(
                first,
                BoxScope::Batch,
            )))),
            InputGradient,
            Some(0.03),
        ),
        (
            "saliency-grafting (with originals)".into(),
            A::SaliencyGrafting(SaliencyGraftingConfig::default()),
            DoubleBatch,
            Some(0.03),
        ),
        // The option that forwards originals and grafts as one 2N batch after a separate
        // frozen pass: shown for its cost, no target.
        (
            "saliency-grafting (with originals, frozen pass)".into(),
            A::SaliencyGrafting(SaliencyGraftingConfig {
                feature_map: Some(FeatureMapSource::FrozenPass),
                ..Default::default()
            }),
            DoubleBatch,
            None,
        ),
    ]);
    Ok(rows)
}

/// The baseline, the two floors, then every mixing method.
fn cases(input: Input, args: &OverheadBench) -> Result<Vec<Case>> {
    let norm = input.normalization().normalization();
    let mut cases = vec![
        Case::floor("none (baseline)", Work::Plain { double: false }),
        Case::floor("floor: none on 2N images", Work::Plain { double: true }),
        Case::floor(
            "floor: none + frozen input-gradient pass",
            Work::InputGradientFloor,
        ),
    ];
    for (label, config, floor, target) in methods(args)? {
        let augmentation = config
            .init(args.seed, Some(&norm))
            .with_context(|| format!("building {label}"))?;
        cases.push(Case {
            label,
            work: Work::Method(Arc::new(augmentation)),
            floor,
            target,
        });
    }
    Ok(cases)
}

/// One round's random data: 2N images (u8 pixels normalised as the data set's, so the u8
/// detectors' de-normalisation recovers them) and labels; a case takes the first N or all.
struct RoundData {
    shape: [usize; 4],
    pixels: Vec<f32>,
    labels: Vec<i64>,
}

impl RoundData {
    fn new(input: Input, n: usize, seed: u64, round: u64) -> Self {
        let shape = [2 * n, input.channels(), 32, 32];
        let mut rng = StdRng::seed_from_u64(seed ^ (round + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let normalizer = input.normalization().normalization().normalizer();
        let [_, c, h, w] = shape;
        let pixels = (0..shape.iter().product::<usize>())
            .map(|i| normalizer.apply(rng.random(), (i / (h * w)) % c))
            .collect();
        let labels = (0..2 * n)
            .map(|_| rng.random_range(0..CLASSES as i64))
            .collect();
        Self {
            shape,
            pixels,
            labels,
        }
    }

    /// The first `images` images as the trainer's batch, fresh tensors on `device` (a method
    /// may mix in place).
    fn batch(&self, images: usize, step: u64, device: &Device) -> ImageBatch {
        let [_, c, h, w] = self.shape;
        let pixels = self.pixels[..images * c * h * w].to_vec();
        let labels = self.labels[..images].to_vec();
        ImageBatch::new(
            Tensor::from_data(TensorData::new(pixels, [images, c, h, w]), device),
            Tensor::<1, Int>::from_data(TensorData::new(labels, [images]), device),
            EPOCH,
            step,
        )
    }
}

/// The input gradient of the cross-entropy on the clean batch through a frozen clone of the
/// model: the pass SalfMix and HybridMix cannot avoid.
fn frozen_input_gradient(model: &Model, images: &Tensor<4>, labels: &Tensor<1, Int>) -> Tensor<4> {
    let frozen = model.clone().freeze();
    let images = images.clone().detach().require_grad();
    let logits = frozen.forward(images.clone());
    let targets = one_hot_targets(labels.clone(), CLASSES, LabelSmoothing::default());
    let grads = soft_cross_entropy(logits, targets).backward();
    images
        .grad(&grads)
        .expect("the input was marked require_grad")
}

/// One training step of `case`, timed from the batch on the device to the updated model; also
/// returns the step's loss.
fn timed_step(
    mut classifier: Classifier,
    optim: &mut ModuleOptimizer,
    case: &Case,
    batch: ImageBatch,
    device: &Device,
) -> Result<(Classifier, f64, Tensor<1>)> {
    classifier.augmentation = case.augmentation();
    device.sync().context("waiting for the device")?;
    let start = Instant::now();
    if let Work::InputGradientFloor = case.work {
        drop(frozen_input_gradient(
            &classifier.model,
            &batch.images,
            &batch.labels,
        ));
    }
    let out = TrainStep::step(&classifier, batch);
    let loss = out.item.loss.clone();
    drop(out.item);
    let classifier = classifier.optimize(optim, LR.into(), out.grads);
    device.sync().context("waiting for the device")?;
    Ok((classifier, start.elapsed().as_secs_f64(), loss))
}

/// The order of the cases in round `round`: a fresh permutation each round, so that no case
/// always follows the same one (a step after a 2N step or a saliency pass may run differently).
fn round_order(cases: usize, seed: u64, round: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cases).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        seed.wrapping_add(round).rotate_left(17) ^ 0xA5A5,
    ));
    order
}

/// Step times (seconds) of each case, over the timed rounds.
struct Rounds {
    times: Vec<Vec<f64>>,
    classifier: Classifier,
}

/// Trains `warmup + steps` rounds of every case, round-robin, on one model and optimizer.
fn run_rounds(
    cases: &[Case],
    setting: Setting,
    args: &OverheadBench,
    device: &Device,
) -> Result<Rounds> {
    let config = ModelConfig::new(Architecture::CifarResNet(ResNetDepth::D18), CLASSES)
        .with_in_channels(setting.input.channels())
        .with_base_width(Some(setting.width));
    device.seed(args.seed);
    let model = config.try_init(device)?;
    // Materialise the lazy parameters before anything clones the model (a frozen clone of
    // never-initialised parameters freezes the original too).
    let probe = RoundData::new(setting.input, 2, args.seed, u64::MAX - 1).batch(2, 0, device);
    drop(model.forward(probe.images));
    // As the trainer builds it: the dropout stream reseeded from the run seed every step.
    let mut classifier = Classifier::new(model, None).with_run_seed(args.seed);
    let mut optim = sgd().init();
    let mut times = vec![Vec::with_capacity(setting.steps); cases.len()];
    let mut last_loss = vec![None; cases.len()];
    let rounds = args.warmup + setting.steps;
    for round in 0..rounds {
        let data = RoundData::new(setting.input, args.batch, args.seed, round as u64);
        let started = Instant::now();
        for i in round_order(cases.len(), args.seed, round as u64) {
            // Settling steps first: the timed step follows a step of the same case, as every
            // step of a training run follows one of the same method.
            for settling in (0..=args.settle).rev() {
                let batch = data.batch(args.batch * cases[i].batch_factor(), round as u64, device);
                let (next, seconds, loss) =
                    timed_step(classifier, &mut optim, &cases[i], batch, device)?;
                classifier = next;
                if round >= args.warmup && settling == 0 {
                    times[i].push(seconds);
                }
                last_loss[i] = Some(loss);
            }
        }
        eprintln!(
            "width {}: round {}/{rounds}{} in {:.1} s (load {})",
            setting.width,
            round + 1,
            if round < args.warmup {
                " (warm-up)"
            } else {
                ""
            },
            started.elapsed().as_secs_f64(),
            measure::load_average()
        );
    }
    for (case, loss) in cases.iter().zip(last_loss) {
        // The step reports each sample's loss (`soft_cross_entropy_per_sample`).
        let loss: f32 = loss.expect("every case ran").mean().into_scalar();
        ensure!(
            loss.is_finite(),
            "{}: the loss is {loss}: a diverged model times differently",
            case.label
        );
    }
    Ok(Rounds { times, classifier })
}

/// The parts of a method's step timed alone (median seconds): the model's saliency pass, where
/// the method has one, and the mixer.
#[derive(Default, Clone, Copy)]
struct Parts {
    pass: Option<f64>,
    mixer: Option<f64>,
}

/// Times `run` `warmup + calls` times on what `prepare` makes for the call (outside the
/// timer), waiting for the device before and after; the median of the timed calls, in seconds.
fn time_calls<P, T>(
    (warmup, calls): (usize, usize),
    device: &Device,
    mut prepare: impl FnMut(usize) -> P,
    mut run: impl FnMut(P, usize) -> Result<T>,
) -> Result<f64> {
    let mut seconds = Vec::with_capacity(calls);
    for call in 0..warmup + calls {
        let input = prepare(call);
        device.sync().context("waiting for the device")?;
        let start = Instant::now();
        let out = run(input, call)?;
        device.sync().context("waiting for the device")?;
        let elapsed = start.elapsed().as_secs_f64();
        drop(out);
        if call >= warmup {
            seconds.push(elapsed);
        }
    }
    Ok(measure::median(&seconds))
}

/// Each method's parts alone, on one clean batch, after the rounds (the model as they left
/// it): the step's own saliency pass (`sal_train::step::saliency_pass`: a frozen copy of the
/// model, then the pass over the clean images), and the mixer on a fresh copy of the batch
/// with the map that pass gave. Default (none) for the floors.
fn time_parts(
    cases: &[Case],
    model: &Model,
    setting: Setting,
    args: &OverheadBench,
    device: &Device,
) -> Result<Vec<Parts>> {
    let data = RoundData::new(setting.input, args.batch, args.seed, u64::MAX);
    let clean = data.batch(args.batch, 0, device);
    let mut parts = Vec::with_capacity(cases.len());
    for case in cases {
        let Some(augmentation) = case.augmentation() else {
            parts.push(Parts::default());
            continue;
        };
        let input = augmentation.saliency_input();
        let pass = || saliency_pass(model, input, &clean.labels).map(|p| p(&clean.images));
        let (pass_time, saliency) = match pass() {
            // The step takes this map from its training forward: no pass of its own to time
            // (the frozen pass only feeds the mixer here).
            Some(map) if input == SaliencyInput::TrainingFeatureMap => (None, Some(map)),
            Some(map) => {
                let time = time_calls((1, args.pass_calls), device, |_| (), |(), _| Ok(pass()))?;
                (Some(time), Some(map))
            }
            None => (None, None),
        };
        let prepare = |call: usize| {
            let batch = data.batch(args.batch, call as u64, device);
            let mix = MixBatch::new(batch.images, batch.labels, CLASSES).with_epoch(EPOCH - 1);
            match &saliency {
                Some(s) => mix.with_saliency(s.clone()),
                None => mix,
            }
        };
        let mixer = time_calls(
            (MIXER_WARMUP, args.mixer_calls),
            device,
            prepare,
            |mix, call| {
                augmentation
                    .mix(mix, call as u64)
                    .with_context(|| format!("{} failed", case.label))
            },
        )?;
        parts.push(Parts {
            pass: pass_time,
            mixer: Some(mixer),
        });
    }
    Ok(parts)
}

/// The run of one width: its rounds, the parts alone, the table.
fn bench_setting(setting: Setting, args: &OverheadBench, device: &Device) -> Result<()> {
    let cases = cases(setting.input, args)?;
    println!(
        "\n## CIFAR ResNet-18, width {}, batch {} x {}, {} timed rounds after {} warm-up \
         (interleaved, {} cases; {} untimed step(s) of the same case before each timed one)\n",
        setting.width,
        args.batch,
        setting.input.name(),
        setting.steps,
        args.warmup,
        cases.len(),
        args.settle
    );
    println!("load average before: {}", measure::load_average());
    let rounds = run_rounds(&cases, setting, args, device)?;
    let parts = time_parts(&cases, &rounds.classifier.model, setting, args, device)?;
    println!("load average after: {}\n", measure::load_average());
    print_table(&cases, &rounds.times, &parts);
    Ok(())
}

/// Milliseconds of the median of `seconds`.
fn ms(seconds: f64) -> String {
    format!("{:.1}", seconds * 1e3)
}

fn print_table(cases: &[Case], times: &[Vec<f64>], parts: &[Parts]) {
    let median = |floor: Floor| {
        let index = cases
            .iter()
            .position(|c| {
                matches!(
                    (floor, &c.work),
                    (Floor::Baseline, Work::Plain { double: false })
                        | (Floor::DoubleBatch, Work::Plain { double: true })
                        | (Floor::InputGradient, Work::InputGradientFloor)
                )
            })
            .expect("every floor is a case");
        measure::median(&times[index])
    };
    let baseline = median(Floor::Baseline);
    println!(
        "| method | median step ms (p10-p90) | / baseline | / floor | target | verdict | \
         over floor ms | saliency pass alone ms | mixer alone ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let optional = |seconds: Option<f64>| seconds.map_or("-".into(), ms);
    for ((case, seconds), part) in cases.iter().zip(times).zip(parts) {
        let s = Summary::of(seconds);
        let floor = median(case.floor);
        let over_floor = s.median / floor;
        let method = matches!(case.work, Work::Method(_));
        let (target, met) = match case.target {
            Some(t) => (
                format!("<= {:.2}", 1.0 + t),
                verdict(over_floor <= 1.0 + t).to_string(),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} ({}-{}) | {:.3} | {} | {target} | {met} | {} | {} | {} |",
            case.label,
            ms(s.median),
            ms(s.p10),
            ms(s.p90),
            s.median / baseline,
            if method {
                format!("{over_floor:.3}")
            } else {
                "-".into()
            },
            optional(method.then_some(s.median - floor)),
            optional(part.pass),
            optional(part.mixer),
        );
    }
    println!(
        "\nfloor passes: the input-gradient pass {} ms, the second N images of a 2N step {} ms \
         (medians of the floors minus the baseline's)",
        ms(median(Floor::InputGradient) - baseline),
        ms(median(Floor::DoubleBatch) - baseline)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: OverheadBench,
    }

    fn settings(args: &[&str]) -> Result<Vec<(usize, Input, usize)>> {
        let cli = Cli::try_parse_from(std::iter::once("overhead").chain(args.iter().copied()))?;
        Ok(cli
            .bench
            .settings()?
            .into_iter()
            .map(|s| (s.width, s.input, s.steps))
            .collect())
    }

    #[test]
    fn one_setting_per_width() {
        assert_eq!(
            settings(&[]).unwrap(),
            [(64, Input::Cifar, 5), (8, Input::FashionMnist, 30)]
        );
        assert_eq!(
            settings(&["--widths", "16,8", "--inputs", "cifar", "--steps", "3"]).unwrap(),
            [(16, Input::Cifar, 3), (8, Input::Cifar, 3)]
        );
        assert_eq!(
            settings(&["--widths", "8,64,16"]).unwrap(),
            [
                (8, Input::FashionMnist, 30),
                (64, Input::Cifar, 5),
                (16, Input::Cifar, 30)
            ]
        );
        assert!(settings(&["--widths", "64", "--steps", "1,2"]).is_err());
        assert!(settings(&["--steps", "0"]).is_err());
    }

    #[test]
    fn every_mixing_method_has_a_row() {
        let cli = Cli::try_parse_from(["overhead"]).unwrap();
        let rows = methods(&cli.bench).unwrap();
        for method in AugmentationConfig::MIXING_METHODS {
            assert!(
                rows.iter()
                    .any(|(_, config, ..)| config.method_name() == *method),
                "{method} has no row"
            );
        }
        for input in [Input::Cifar, Input::FashionMnist] {
            assert_eq!(cases(input, &cli.bench).unwrap().len(), 3 + rows.len());
        }
    }

    #[test]
    fn detectors_by_their_config_names() {
        assert_eq!(
            parse_detector("spectral-residual-device"),
            Ok(DetectorChoice::SpectralResidualDevice)
        );
        assert_eq!(
            parse_detector("fine-grained"),
            Ok(DetectorChoice::FineGrained)
        );
        assert!(parse_detector("sobel").is_err());
    }
}
