//! `cargo xtask bench models`: training-step and inference throughput of a CIFAR ResNet on burn
//! beside the same model and step in PyTorch, in one run, with the same thread count.
//!
//! The step is the SaliencyMix CIFAR recipe's: forward, soft-target cross-entropy, backward,
//! SGD (lr 0.1, Nesterov momentum 0.9, weight decay 5e-4), on one fixed random batch. Each side
//! runs `warmup` untimed steps, then `steps` timed ones, in `rounds` rounds that alternate which
//! side goes first; the report gives the median wall-clock step (with the range, which shows how
//! noisy the machine was) and the median CPU seconds per step. `--ops` breaks a step down op by
//! op instead. PyTorch runs from a virtual environment the bench creates
//! (`target/peer-venv/torch`, see `pyenv::TORCH_PACKAGES`). `--precision bf16` times burn under
//! `sal_models::autocast` beside PyTorch's `torch.autocast(dtype=torch.bfloat16)`, plain and
//! with `channels_last` (the best a PyTorch user runs on a CPU with AMX). Results and findings:
//! docs/benchmarks.md.

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use clap::Args;
use sal_models::{
    Architecture, ModelConfig, Precision, ResNetDepth, autocast, num_trainable_params,
};
use sal_train::BackendKind;
use serde::{Deserialize, Serialize};

use super::measure;
use crate::pyenv::PyEnv;

/// The burn release the workspace builds, for the report.
const BURN: &str = "burn 0.22.1";

/// Options of `cargo xtask bench models`.
#[derive(Args)]
pub struct ModelsBench {
    /// A CIFAR ResNet (`cifar-resnet18` ... `cifar-resnet152`): the PyTorch peer builds that
    /// layout.
    #[arg(long, default_value = "cifar-resnet18")]
    architecture: Architecture,
    /// Images per step (32x32x3).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Threads for both sides (RAYON_NUM_THREADS for burn, torch.set_num_threads).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps per round (the median over all rounds is reported).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Rounds, alternating which side runs first (each round re-creates model and optimizer).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Base width of the ResNet (64 = the paper's).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Classes of the classifier.
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Device of the burn side: cpu (flex), or wgpu / cuda with xtask built with that cargo
    /// feature. PyTorch runs on the CPU for cpu, on CUDA (GPU 0) for wgpu and cuda.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendKind,
    /// Time burn only (no Python environment needed).
    #[arg(long)]
    burn_only: bool,
    /// Instead of whole steps, time each op of the step (every conv shape, batch norm, ReLU,
    /// residual add; forward+backward) on both sides and print where a step's time goes (CPU
    /// backend only).
    #[arg(long)]
    ops: bool,
    /// Run both sides with glibc's allocator in its steady state (no trimming, large mmap
    /// threshold) instead of its defaults.
    #[arg(long)]
    steady_malloc: bool,
    /// The precision of the convolutions: fp32; bf16 (cpu: burn under `sal_models::autocast`,
    /// PyTorch under bf16 autocast, plain and channels_last); f16 on a GPU backend (PyTorch
    /// under f16 autocast on CUDA).
    #[arg(long, value_parser = parse_precision, default_value = "fp32")]
    precision: Precision,
}

pub(super) fn parse_precision(text: &str) -> Result<Precision, String> {
    [Precision::Fp32, Precision::Bf16, Precision::F16]
        .into_iter()
        .find(|p| p.name() == text)
        .ok_or_else(|| format!("expected fp32, bf16 or f16, got `{text}`"))
}

/// One PyTorch configuration the bench runs beside burn: autocast or not, and the memory
/// format of the model and batch.
#[derive(Clone, Copy)]
pub(super) struct TorchVariant {
    pub(super) precision: Precision,
    pub(super) channels_last: bool,
}

impl TorchVariant {
    /// PyTorch's configurations beside burn in `precision` on `backend`: autocast to the same
    /// type; with bf16 on the CPU also with channels_last, the best a PyTorch user runs on a
    /// CPU with AMX.
    pub(super) fn beside(precision: Precision, backend: BackendKind) -> Vec<Self> {
        let plain = TorchVariant {
            precision,
            channels_last: false,
        };
        match (precision, backend) {
            (Precision::Bf16, BackendKind::Cpu) => vec![
                plain,
                TorchVariant {
                    channels_last: true,
                    ..plain
                },
            ],
            _ => vec![plain],
        }
    }

    pub(super) fn args(&self) -> [String; 2] {
        let precision = self.precision.name();
        let format = if self.channels_last {
            "channels_last"
        } else {
            "contiguous"
        };
        [precision.into(), format.into()]
    }

    pub(super) fn label(&self) -> String {
        let mut label = match self.precision {
            Precision::Fp32 => "fp32".to_string(),
            half => format!("{} autocast", half.name()),
        };
        if self.channels_last {
            label += " + channels_last";
        }
        label
    }
}

impl ModelsBench {
    /// The CIFAR ResNet depth to build, once the options are checked.
    fn depth(&self) -> Result<ResNetDepth> {
        let Architecture::CifarResNet(depth) = self.architecture else {
            bail!(
                "the PyTorch peer builds CIFAR ResNets only; got `{}`",
                self.architecture
            );
        };
        ensure!(
            self.steps > 0 && self.rounds > 0 && self.batch > 0 && self.threads > 0,
            "steps, rounds, batch and threads must be positive"
        );
        ensure!(
            !self.ops || self.backend == BackendKind::Cpu,
            "--ops compares process CPU time with PyTorch on the CPU: use it with --backend cpu"
        );
        if let Err(message) = sal_train::config::precision_on_backend(self.precision, self.backend)
        {
            bail!("--precision {}: {message}", self.precision.name());
        }
        ensure!(
            self.precision == Precision::Fp32 || !self.ops || self.burn_only,
            "--ops with --precision bf16 times burn's ops only (add --burn-only)"
        );
        Ok(depth)
    }

    /// PyTorch's device beside burn's backend.
    fn torch_device(&self) -> &'static str {
        match self.backend {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu | BackendKind::Cuda => "cuda",
        }
    }

    /// burn's side in the report.
    fn burn_name(&self) -> String {
        let backend = match self.backend {
            BackendKind::Cpu => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        };
        match (self.precision, self.backend) {
            (Precision::Fp32, _) => format!("{BURN} {backend}"),
            (Precision::Bf16, BackendKind::Cpu) => format!(
                "{BURN} {backend} bf16 ({})",
                sal_models::bf16_instructions().unwrap_or("f32: no bf16 units")
            ),
            (half, _) => format!("{BURN} {backend} {}", half.name()),
        }
    }

    /// The PyTorch configurations beside burn: the same precision; with bf16 on the CPU also
    /// with channels_last.
    fn torch_variants(&self) -> Vec<TorchVariant> {
        TorchVariant::beside(self.precision, self.backend)
    }
}

/// Wall-clock and CPU seconds of the timed steps of one loop. CPU seconds (all threads of the
/// process) are what a step cost whatever else ran on the machine, so they compare the two sides
/// better than wall time when the machine is shared.
#[derive(Default)]
struct StepTimes {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

/// When a step started, on the wall clock and in process CPU time.
struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: measure::process_cpu_seconds(),
        }
    }
}

impl StepTimes {
    fn push(&mut self, start: Stopwatch) {
        self.wall.push(start.wall.elapsed().as_secs_f64());
        self.cpu.push(measure::process_cpu_seconds() - start.cpu);
    }

    fn extend(&mut self, other: StepTimes) {
        self.wall.extend(other.wall);
        self.cpu.extend(other.cpu);
    }
}

/// One side's training and inference step times, over every round so far.
#[derive(Default)]
struct Timings {
    train: StepTimes,
    infer: StepTimes,
}

impl Timings {
    fn extend(&mut self, other: Timings) {
        self.train.extend(other.train);
        self.infer.extend(other.infer);
    }
}

/// One side of the report: its name and its timings.
struct Side {
    name: String,
    timings: Timings,
}

/// What `models_torch.py step` prints.
#[derive(Deserialize)]
struct TorchReport {
    torch: String,
    device: String,
    threads: usize,
    params: usize,
    train_s: Vec<f64>,
    infer_s: Vec<f64>,
    train_cpu_s: Vec<f64>,
    infer_cpu_s: Vec<f64>,
}

impl TorchReport {
    fn side(self, variant: &TorchVariant) -> Side {
        Side {
            name: format!(
                "PyTorch {} {} ({}, {} thr)",
                self.torch,
                variant.label(),
                self.device,
                self.threads
            ),
            timings: Timings {
                train: StepTimes {
                    wall: self.train_s,
                    cpu: self.train_cpu_s,
                },
                infer: StepTimes {
                    wall: self.infer_s,
                    cpu: self.infer_cpu_s,
                },
            },
        }
    }
}

pub fn run(args: ModelsBench) -> Result<()> {
    let depth = args.depth()?;
    // rayon sizes its global pool from the environment when it first starts, so the thread
    // count must be in the environment before any burn op.
    let mut env = vec![(measure::THREADS_ENV, args.threads.to_string())];
    env.extend(measure::malloc_env(args.steady_malloc));
    if measure::rerun_with_env(&env)? {
        return Ok(());
    }
    let device =
        sal_train::backend::device(args.backend).context("setting up the burn side's device")?;
    let load_before = measure::load_average();
    if !args.burn_only {
        measure::warn_if_busy();
    }
    if args.ops {
        println!(
            "load average before: {load_before} ({} cores)",
            measure::cores()
        );
        profile_ops(depth, &args, &device)?;
        println!("load average after: {}", measure::load_average());
        return Ok(());
    }
    println!(
        "{} (width {}, {} classes), batch {}x3x32x32, {} threads, median of {} rounds x {} steps after {} warm-up each",
        args.architecture,
        args.width,
        args.classes,
        args.batch,
        args.threads,
        args.rounds,
        args.steps,
        args.warmup
    );
    println!("allocator (both sides): {}", measure::malloc_settings());
    println!(
        "load average before: {load_before} ({} cores)",
        measure::cores()
    );
    let (burn, torch) = time_rounds(depth, &args, &device)?;
    let load_after = measure::load_average();
    print_report(&args, &burn, &torch);
    println!("load average after: {load_after}");
    Ok(())
}

/// Times both sides over the rounds. The machine may be shared: the rounds alternate which side
/// goes first (burn, then PyTorch first, ...) so both see the same mix of quiet and busy moments.
fn time_rounds(
    depth: ResNetDepth,
    args: &ModelsBench,
    device: &Device,
) -> Result<(Side, Vec<Side>)> {
    let config =
        ModelConfig::new(args.architecture, args.classes).with_base_width(Some(args.width));
    let mut burn = Side {
        name: args.burn_name(),
        timings: Timings::default(),
    };
    let variants = if args.burn_only {
        Vec::new()
    } else {
        args.torch_variants()
    };
    let mut torch: Vec<Option<Side>> = variants.iter().map(|_| None).collect();
    for round in 1..=args.rounds {
        let torch_first = round % 2 == 0;
        for torch_turn in [torch_first, !torch_first] {
            if !torch_turn {
                eprintln!("round {round}: timing burn ...");
                burn.timings.extend(time_burn(&config, device, args)?);
                continue;
            }
            for (variant, sides) in variants.iter().zip(&mut torch) {
                eprintln!("round {round}: timing PyTorch {} ...", variant.label());
                let side = run_torch_steps(&config, depth, args, *variant)?.side(variant);
                match sides {
                    Some(all) => all.timings.extend(side.timings),
                    None => *sides = Some(side),
                }
            }
        }
    }
    Ok((burn, torch.into_iter().flatten().collect()))
}

/// The table of every side, then burn's ratios to each PyTorch side.
fn print_report(args: &ModelsBench, burn: &Side, torch: &[Side]) {
    use measure::median;
    // The names column as wide as the longest name.
    let w = std::iter::once(burn)
        .chain(torch)
        .map(|side| side.name.len())
        .max()
        .unwrap_or(0)
        .max(34);
    println!();
    println!(
        "{:<w$} {:>21} {:>8} {:>9} {:>21} {:>8} {:>9}",
        "", "train step s (range)", "img/s", "CPU s", "inference s (range)", "img/s", "CPU s"
    );
    let row = |side: &Side| {
        let (train, infer) = (&side.timings.train, &side.timings.infer);
        println!(
            "{:<w$} {:>21} {:>8.1} {:>9.2} {:>21} {:>8.1} {:>9.2}",
            side.name,
            median_and_range(&train.wall),
            args.batch as f64 / median(&train.wall),
            median(&train.cpu),
            median_and_range(&infer.wall),
            args.batch as f64 / median(&infer.wall),
            median(&infer.cpu),
        );
    };
    row(burn);
    torch.iter().for_each(row);
    let b = &burn.timings;
    for side in torch {
        let t = &side.timings;
        println!(
            "ratio burn / {}: throughput (wall clock) training {:.2}x, inference {:.2}x; \
             CPU cost per step (its CPU s / burn's) training {:.2}x, inference {:.2}x",
            side.name,
            median(&t.train.wall) / median(&b.train.wall),
            median(&t.infer.wall) / median(&b.infer.wall),
            median(&t.train.cpu) / median(&b.train.cpu),
            median(&t.infer.cpu) / median(&b.infer.cpu),
        );
    }
}

/// `median (min-max)` of step seconds.
fn median_and_range(seconds: &[f64]) -> String {
    let s = measure::Summary::of(seconds);
    format!("{:.3} ({:.2}-{:.2})", s.median, s.min, s.max)
}

/// Runs the PyTorch peer's timed steps once and checks it built the same network.
fn run_torch_steps(
    config: &ModelConfig,
    depth: ResNetDepth,
    args: &ModelsBench,
    variant: TorchVariant,
) -> Result<TorchReport> {
    let blocks = depth.blocks_per_stage().map(|b| b.to_string()).join(",");
    let block = if depth.is_bottleneck() {
        "bottleneck"
    } else {
        "basic"
    };
    let [precision, memory_format] = variant.args();
    let out = PyEnv::torch()?.run_script(
        &super::with_torch_resnet(include_str!("models_torch.py")),
        &[
            "step".to_string(),
            block.to_string(),
            blocks,
            args.width.to_string(),
            args.classes.to_string(),
            args.batch.to_string(),
            args.threads.to_string(),
            args.warmup.to_string(),
            args.steps.to_string(),
            args.torch_device().to_string(),
            precision,
            memory_format,
        ],
    )?;
    let report: TorchReport = serde_json::from_str(out.trim())
        .with_context(|| format!("parsing the PyTorch peer's report: {out}"))?;
    let ours = config.num_trainable_params()?;
    ensure!(
        report.params == ours,
        "the PyTorch model has {} parameters, burn's {ours}: not the same network",
        report.params
    );
    Ok(report)
}

/// One round of burn's side: training steps, then inference steps, in `--precision`.
fn time_burn(config: &ModelConfig, device: &Device, args: &ModelsBench) -> Result<Timings> {
    autocast(args.precision, || {
        Ok(Timings {
            train: time_burn_train(config, device, args)?,
            infer: time_burn_infer(config, device, args)?,
        })
    })
}

/// The recipe's optimizer: SGD, Nesterov momentum 0.9 without dampening, weight decay 5e-4.
pub(super) fn sgd() -> SgdConfig {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new()
                .with_momentum(0.9)
                // burn's default dampening is 0.1; PyTorch's (and the recipe's) is 0.
                .with_dampening(0.0)
                .with_nesterov(true),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
}

fn time_burn_train(config: &ModelConfig, device: &Device, args: &ModelsBench) -> Result<StepTimes> {
    let device = device.clone().autodiff();
    let mut model = config.init(&device);
    let mut optim = sgd().init();
    let (x, soft) = batch(args.batch, args.classes, &device);
    let mut times = StepTimes::default();
    for step in 0..args.warmup + args.steps {
        let start = Stopwatch::start();
        let logits = model.forward(x.clone());
        let loss = -(soft.clone() * log_softmax(logits, 1)).sum_dim(1).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.1, model, grads);
        device.sync()?;
        if step >= args.warmup {
            times.push(start);
        }
    }
    debug_assert_eq!(num_trainable_params(&model), config.num_trainable_params()?);
    Ok(times)
}

/// Inference on the plain (non-autodiff) device, where batch norm uses its running statistics;
/// the weights' values do not matter for the timing.
fn time_burn_infer(config: &ModelConfig, device: &Device, args: &ModelsBench) -> Result<StepTimes> {
    let model = config.init(device);
    let (x, _) = batch(args.batch, args.classes, device);
    let mut times = StepTimes::default();
    for step in 0..args.warmup + args.steps {
        let start = Stopwatch::start();
        let _ = model.forward(x.clone()).into_data();
        if step >= args.warmup {
            times.push(start);
        }
    }
    Ok(times)
}

/// A random normal batch and one-hot soft targets.
fn batch(size: usize, classes: usize, device: &Device) -> (Tensor<4>, Tensor<2>) {
    let x = Tensor::<4>::random([size, 3, 32, 32], Distribution::Normal(0.0, 1.0), device);
    let mut soft = vec![0f32; size * classes];
    for i in 0..size {
        soft[i * classes + (i * 7) % classes] = 1.0;
    }
    let soft = Tensor::<2>::from_data(TensorData::new(soft, [size, classes]), device);
    (x, soft)
}

/// One op shape of the network and how many times a training step runs it. Serialised to the
/// PyTorch peer, which times the same list.
#[derive(Serialize)]
struct OpCase {
    label: String,
    count: usize,
    input: [usize; 4],
    kind: OpKind,
}

#[derive(Serialize, Clone, Copy, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpKind {
    /// Bias-free conv with "same" padding; the stem conv needs no input gradient.
    Conv {
        out: usize,
        kernel: usize,
        stride: usize,
        input_grad: bool,
    },
    /// Training-mode batch norm.
    BatchNorm,
    Relu,
    /// The residual addition.
    Add,
}

impl OpKind {
    /// A conv that needs its input gradient (every conv but the stem).
    fn conv(out: usize, kernel: usize, stride: usize) -> Self {
        Self::Conv {
            out,
            kernel,
            stride,
            input_grad: true,
        }
    }

    fn label(self, channels: usize, size: usize) -> String {
        match self {
            Self::Conv {
                out,
                kernel,
                stride,
                ..
            } => format!("conv{kernel}x{kernel} {channels}->{out} s{stride} @{size}"),
            Self::BatchNorm => format!("batch norm {channels}@{size}"),
            Self::Relu => format!("relu {channels}@{size}"),
            Self::Add => format!("add {channels}@{size}"),
        }
    }
}

/// The distinct op shapes of a step, in order of first use, with their counts.
struct OpList {
    batch: usize,
    ops: Vec<OpCase>,
}

impl OpList {
    fn add(&mut self, kind: OpKind, channels: usize, size: usize) {
        let label = kind.label(channels, size);
        match self.ops.iter_mut().find(|op| op.label == label) {
            Some(op) => op.count += 1,
            None => self.ops.push(OpCase {
                label,
                count: 1,
                input: [self.batch, channels, size, size],
                kind,
            }),
        }
    }
}

/// The ops of a basic-block CIFAR ResNet's step, by shape, with their counts.
fn basic_resnet_ops(depth: ResNetDepth, width: usize, batch: usize) -> Vec<OpCase> {
    let mut list = OpList {
        batch,
        ops: Vec::new(),
    };
    let stem = OpKind::Conv {
        out: width,
        kernel: 3,
        stride: 1,
        input_grad: false,
    };
    let mut size = 32;
    list.add(stem, 3, size);
    list.add(OpKind::BatchNorm, width, size);
    list.add(OpKind::Relu, width, size);
    let mut channels = width;
    for (stage, &blocks) in depth.blocks_per_stage().iter().enumerate() {
        let planes = width << stage;
        for index in 0..blocks {
            let stride = if stage > 0 && index == 0 { 2 } else { 1 };
            let out_size = size / stride;
            list.add(OpKind::conv(planes, 3, stride), channels, size);
            list.add(OpKind::conv(planes, 3, 1), planes, out_size);
            let projection = stride != 1 || channels != planes;
            if projection {
                list.add(OpKind::conv(planes, 1, stride), channels, size);
            }
            for _ in 0..if projection { 3 } else { 2 } {
                list.add(OpKind::BatchNorm, planes, out_size);
            }
            list.add(OpKind::Relu, planes, out_size);
            list.add(OpKind::Relu, planes, out_size);
            list.add(OpKind::Add, planes, out_size);
            channels = planes;
            size = out_size;
        }
    }
    list.ops
}

/// Median process CPU milliseconds of `steps` calls of `f` after `warmup` untimed ones.
fn median_cpu_ms(warmup: usize, steps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let start = measure::process_cpu_seconds();
        f()?;
        if i >= warmup {
            times.push((measure::process_cpu_seconds() - start) * 1e3);
        }
    }
    Ok(measure::median(&times))
}

/// Forward+backward CPU time in ms of one op on burn (median of `steps` after `warmup`).
fn time_burn_op(op: &OpCase, device: &Device, warmup: usize, steps: usize) -> Result<f64> {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};
    let device = device.clone().autodiff();
    let x = Tensor::<4>::random(op.input, Distribution::Normal(0.0, 1.0), &device);
    let run: Box<dyn Fn(Tensor<4>) -> Tensor<4>> = match op.kind {
        OpKind::Conv {
            out,
            kernel,
            stride,
            ..
        } => {
            let pad = kernel / 2;
            let conv = Conv2dConfig::new([op.input[1], out], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(&device);
            Box::new(move |x| sal_models::conv2d(&conv, x))
        }
        OpKind::BatchNorm => {
            let bn = BatchNormConfig::new(op.input[1]).init(&device);
            Box::new(move |x| sal_models::batch_norm(&bn, x))
        }
        OpKind::Relu => Box::new(burn::tensor::activation::relu),
        OpKind::Add => {
            let other = Tensor::<4>::random(op.input, Distribution::Normal(0.0, 1.0), &device);
            Box::new(move |x| x + other.clone())
        }
    };
    let x = match op.kind {
        OpKind::Conv {
            input_grad: false, ..
        } => x,
        _ => x.require_grad(),
    };
    median_cpu_ms(warmup, steps, || {
        let _ = run(x.clone()).sum().backward();
        device.sync()?;
        Ok(())
    })
}

/// CPU ms of a conv's three parts on burn, called directly (no autodiff): the three functions
/// of `sal_models::GemmConv` the models' autodiff node runs (forward, input gradient, weight
/// gradient; im2col + GEMM on flex).
fn time_burn_conv_parts(
    op: &OpCase,
    device: &Device,
    warmup: usize,
    steps: usize,
) -> Result<[f64; 3]> {
    use burn::backend::Dispatch;
    use sal_models::GemmConv;
    let ConvInputs {
        x,
        weight,
        grad,
        options,
    } = ConvInputs::random(op, device)?;
    let d = |t: &Tensor<4>| t.clone().into_dispatch();
    let time = |f: &dyn Fn() -> Tensor<4>| {
        median_cpu_ms(warmup, steps, || {
            let _ = f().into_data();
            Ok(())
        })
    };
    Ok([
        time(&|| Tensor::from_dispatch(Dispatch::gemm_conv2d(d(&x), d(&weight), options.clone())))?,
        time(&|| {
            Tensor::from_dispatch(Dispatch::gemm_conv2d_x_backward(
                d(&x),
                d(&weight),
                d(&grad),
                options.clone(),
            ))
        })?,
        time(&|| {
            Tensor::from_dispatch(Dispatch::gemm_conv2d_weight_backward(
                d(&x),
                d(&weight),
                d(&grad),
                options.clone(),
            ))
        })?,
    ])
}

/// Random operands of one conv's three parts: input, weight, output gradient, and its options.
struct ConvInputs {
    x: Tensor<4>,
    weight: Tensor<4>,
    grad: Tensor<4>,
    options: burn::tensor::ops::ConvOptions<2>,
}

impl ConvInputs {
    fn random(op: &OpCase, device: &Device) -> Result<Self> {
        let OpKind::Conv {
            out,
            kernel,
            stride,
            ..
        } = op.kind
        else {
            bail!("not a conv: {}", op.label);
        };
        let pad = kernel / 2;
        let [n, c, h, w] = op.input;
        let (oh, ow) = (
            (h + 2 * pad - kernel) / stride + 1,
            (w + 2 * pad - kernel) / stride + 1,
        );
        let random = |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Default, device);
        Ok(Self {
            x: random(op.input),
            weight: random([out, c, kernel, kernel]),
            grad: random([n, out, oh, ow]),
            options: burn::tensor::ops::ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1),
        })
    }
}

/// Times each op of the step (forward+backward, the backward seeded through a sum) on burn and
/// on PyTorch, in CPU time (all threads; robust to other load on the machine), and prints
/// where a step's time goes on each side; then the same for each conv's three parts.
fn profile_ops(depth: ResNetDepth, args: &ModelsBench, device: &Device) -> Result<()> {
    ensure!(
        !depth.is_bottleneck(),
        "--ops profiles basic-block ResNets (cifar-resnet18, cifar-resnet34)"
    );
    let ops = basic_resnet_ops(depth, args.width, args.batch);
    eprintln!("timing burn's ops ...");
    let burn: Vec<f64> = autocast(args.precision, || {
        ops.iter()
            .map(|op| time_burn_op(op, device, args.warmup, args.steps))
            .collect::<Result<_>>()
    })?;
    let torch: Option<Vec<f64>> = if args.burn_only {
        None
    } else {
        eprintln!("timing PyTorch's ops ...");
        Some(torch_op_times(args, "ops", &ops, "op times")?)
    };
    print_op_table(&ops, &burn, torch.as_deref());

    eprintln!("timing the parts of each conv ...");
    let convs: Vec<&OpCase> = ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Conv { .. }))
        .collect();
    let burn_parts: Vec<[f64; 3]> = autocast(args.precision, || {
        convs
            .iter()
            .map(|op| time_burn_conv_parts(op, device, args.warmup, args.steps))
            .collect::<Result<_>>()
    })?;
    let torch_parts: Option<Vec<[f64; 3]>> = if args.burn_only {
        None
    } else {
        Some(torch_op_times(args, "conv_parts", &convs, "conv times")?)
    };
    print_conv_parts(&convs, &burn_parts, torch_parts.as_deref());
    Ok(())
}

/// Per op: CPU ms per call and per step on each side, and the ratio; then the sums per step.
fn print_op_table(ops: &[OpCase], burn: &[f64], torch: Option<&[f64]>) {
    println!(
        "{:<28} {:>5} {:>13} {:>11} {:>13} {:>11} {:>7}",
        "op (fwd+bwd, CPU ms)",
        "count",
        "burn ms/op",
        "burn ms",
        "PyTorch ms/op",
        "PyTorch ms",
        "ratio"
    );
    let (mut burn_total, mut torch_total) = (0.0, 0.0);
    for (i, op) in ops.iter().enumerate() {
        let (b, count) = (burn[i], op.count as f64);
        burn_total += b * count;
        let (t_op, t_step, ratio) = match torch {
            Some(torch) => {
                torch_total += torch[i] * count;
                (
                    format!("{:.1}", torch[i]),
                    format!("{:.0}", torch[i] * count),
                    // Ops under about a millisecond read 0 (scheduler accounting granularity).
                    if b > 0.5 {
                        format!("{:.2}", torch[i] / b)
                    } else {
                        "-".to_string()
                    },
                )
            }
            None => Default::default(),
        };
        println!(
            "{:<28} {:>5} {:>13.1} {:>11.0} {:>13} {:>11} {:>7}",
            op.label,
            op.count,
            b,
            b * count,
            t_op,
            t_step,
            ratio
        );
    }
    print!("sum per step (CPU ms): burn {burn_total:.0} ms");
    if torch.is_some() {
        print!(
            ", PyTorch {torch_total:.0} ms, ratio {:.2}",
            torch_total / burn_total
        );
    }
    println!(" (ratio = burn throughput / PyTorch's)");
}

/// Per conv: CPU ms of its forward, input gradient and weight gradient on each side.
fn print_conv_parts(convs: &[&OpCase], burn: &[[f64; 3]], torch: Option<&[[f64; 3]]>) {
    println!();
    println!(
        "{:<28} {:>26} {:>26}",
        "conv part (CPU ms per call)",
        "burn fwd / x-grad / w-grad",
        "PyTorch fwd / x-grad / w-grad"
    );
    for (i, op) in convs.iter().enumerate() {
        let [f, x, w] = burn[i];
        let torch = torch.map_or(String::new(), |t| {
            format!("{:>8.0} {:>8.0} {:>8.0}", t[i][0], t[i][1], t[i][2])
        });
        println!("{:<28} {f:>8.0} {x:>8.0} {w:>8.0} {torch:>26}", op.label);
    }
}

/// Runs `models_torch.py` in `mode` (`ops` or `conv_parts`) over `cases` and parses what it
/// prints; `what` names the numbers in errors.
fn torch_op_times<T: serde::de::DeserializeOwned>(
    args: &ModelsBench,
    mode: &str,
    cases: &impl Serialize,
    what: &str,
) -> Result<T> {
    let out = PyEnv::torch()?.run_script(
        &super::with_torch_resnet(include_str!("models_torch.py")),
        &[
            mode.to_string(),
            serde_json::to_string(cases)?,
            args.threads.to_string(),
            args.warmup.to_string(),
            args.steps.to_string(),
        ],
    )?;
    serde_json::from_str(out.trim())
        .with_context(|| format!("parsing the PyTorch peer's {what}: {out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_step_has_twenty_convs_and_batch_norms() {
        let ops = basic_resnet_ops(ResNetDepth::D18, 64, 8);
        let count = |f: fn(&OpKind) -> bool| -> usize {
            ops.iter().filter(|op| f(&op.kind)).map(|op| op.count).sum()
        };
        assert_eq!(count(|k| matches!(k, OpKind::Conv { .. })), 20);
        assert_eq!(count(|k| *k == OpKind::BatchNorm), 20);
        assert_eq!(count(|k| *k == OpKind::Relu), 17);
        assert_eq!(count(|k| *k == OpKind::Add), 8);
        assert_eq!(ops[0].label, "conv3x3 3->64 s1 @32");
        assert_eq!(ops[0].input, [8, 3, 32, 32]);
        let convs: Vec<&str> = ops
            .iter()
            .filter(|op| matches!(op.kind, OpKind::Conv { .. }))
            .map(|op| op.label.as_str())
            .collect();
        assert!(convs.contains(&"conv1x1 64->128 s2 @32"));
        assert!(convs.contains(&"conv3x3 512->512 s1 @4"));
    }
}
