//! The model as burn-train's Learner sees it: one training step (mixing, forward, soft-target
//! cross-entropy, backward) and one evaluation step.
//!
//! The mixing methods live in sal-core and know no model; what they need from the model is a
//! saliency pass this module hands them ([`saliency_pass`], docs/architecture.md), which they
//! run only on the batches they mix:
//! - SalfMix / HybridMix: the input gradient of the cross-entropy on the clean batch (SalfMix
//!   paper eq. 3);
//! - Saliency Grafting: the last conv stage's feature map of the clean batch (paper §4.3).
//!
//! The pass runs through a frozen copy of the network: BatchNorm normalises with its running
//! statistics and leaves them alone, and no parameter gradient is built (only the input
//! gradient is needed). So every step updates the running statistics exactly once, with the
//! batch the network trains on, and a step that trains on originals and grafted images
//! together (Saliency Grafting, `with_original`, `feature_map = "frozen-pass"`) forwards them
//! as one `2N` batch.
//!
//! Saliency Grafting's default needs no pass at all (§4.3: the map is "constructed based on the
//! terms already calculated in the learning process"): the originals' own training forward
//! gives their logits and the feature map, and only the grafted half is forwarded after the
//! mixing; each of the two forwards updates the running statistics with its half.

use crate::loader::ImageBatch;
use crate::pictures::MixedPictures;
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use sal_core::model_saliency::{feature_map_saliency, input_gradient_saliency};
use sal_core::seed::{Stream, derive_seed};
use sal_core::targets::{LabelSmoothing, one_hot_targets};
use sal_core::{Augmentation, MixBatch, MixError, MixOutput, SaliencyInput, SaliencyPass};
use sal_models::{Model, Precision, autocast};
use std::sync::{Arc, OnceLock};

/// Cross-entropy against soft targets: `mean_n( -sum_k y[n,k] * log_softmax(z)[n,k] )`.
/// With one-hot targets it equals the usual cross-entropy; with `lam*y_a + (1-lam)*y_b` it
/// equals `lam*CE(y_a) + (1-lam)*CE(y_b)`, the loss of the mixing papers' code.
///
/// # Shapes
/// - logits `[N, K]`, targets `[N, K]` (rows sum to 1) -> `[1]`
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (targets * log_softmax(logits, 1)).sum_dim(1).mean().neg()
}

/// Each sample's cross-entropy against its soft target, `[N]`: what the steps hand burn-train's
/// loss metric, which weighs a batch by the length of the loss it is given. (Given the batch
/// mean, `[1]`, it would average batch means, and a short last batch would weigh as much as a
/// full one: the test loss in metrics.csv was off by up to 3e-3 before.)
///
/// # Shapes
/// - logits `[N, K]`, targets `[N, K]` -> `[N]`
pub fn soft_cross_entropy_per_sample(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let [n, _] = logits.dims();
    (targets * log_softmax(logits, 1))
        .sum_dim(1)
        .neg()
        .reshape([n])
}

/// `dL/dx` of the cross-entropy `L` of `images` with their true `labels` under `model`, from
/// one forward and one backward pass; what SalfMix's saliency and FGSM read. `images` must be on
/// an autodiff device. The model is used as it is set: pass a frozen copy (see
/// [`saliency_pass`]) to keep its BatchNorm statistics and build no parameter gradients.
///
/// # Shapes
/// - images `[N, C, H, W]`, labels `[N]` -> `[N, C, H, W]`
pub fn loss_input_gradient(
    model: &Model,
    images: &Tensor<4>,
    labels: &Tensor<1, Int>,
) -> Tensor<4> {
    let images = images.clone().detach().require_grad();
    let logits = model.forward(images.clone());
    let loss = soft_cross_entropy(logits.clone(), one_hot(labels, &logits));
    let grads = loss.backward();
    images
        .grad(&grads)
        .expect("the input was marked require_grad")
}

/// SalfMix's saliency (paper eq. 3): `max_c |dL/dx|` of [`loss_input_gradient`].
///
/// # Shapes
/// - images `[N, C, H, W]`, labels `[N]` -> `[N, H, W]`
pub fn input_gradient(model: &Model, images: &Tensor<4>, labels: &Tensor<1, Int>) -> Tensor<3> {
    input_gradient_saliency(loss_input_gradient(model, images, labels))
}

/// The saliency pass `input` asks for, over a frozen copy of `model` (inference BatchNorm, no
/// running-statistics update, no parameter gradients); `None` for the methods that need no
/// model (their saliency is classic or given).
pub fn saliency_pass(
    model: &Model,
    input: SaliencyInput,
    labels: &Tensor<1, Int>,
) -> Option<SaliencyPass> {
    let frozen = || model.clone().freeze();
    match input {
        SaliencyInput::None | SaliencyInput::Given => None,
        SaliencyInput::InputGradient => {
            let (frozen, labels) = (frozen(), labels.clone());
            Some(Arc::new(move |images: &Tensor<4>| {
                input_gradient(&frozen, images, &labels)
            }))
        }
        // Outside a training step (pictures, benches) a frozen pass stands in for the training
        // forward's map: the same feature map, with inference BatchNorm.
        SaliencyInput::FeatureMap | SaliencyInput::TrainingFeatureMap => {
            let frozen = frozen();
            Some(Arc::new(move |images: &Tensor<4>| {
                feature_map_saliency(frozen.features(images.clone()))
            }))
        }
    }
}

/// A classifier under training: the network plus the batch mixing around it.
#[derive(Module, Debug)]
pub struct Classifier {
    pub model: Model,
    /// The `[augmentation]` method; `None` trains on the clean batch. Not a parameter: not
    /// saved in checkpoints (it is rebuilt from the config).
    #[module(skip)]
    pub augmentation: Option<Arc<Augmentation>>,
    /// Independently mixed copies of each batch a step trains on (`k_times`); at least 1.
    #[module(skip)]
    copies: usize,
    /// The run seed the dropout masks' stream is reseeded from at every step (with the step),
    /// so a resumed run, or the same run on another backend, draws the same masks. `None`
    /// leaves the stream alone.
    #[module(skip)]
    run_seed: Option<u64>,
    /// Draws the first mixed batch of every epoch (`mixed/epoch-<e>.png`).
    #[module(skip)]
    pictures: Option<Arc<MixedPictures>>,
    /// The precision every step's convolutions multiply in (`sal_models::autocast`).
    #[module(skip)]
    precision: Precision,
}

impl Classifier {
    pub fn new(model: Model, augmentation: Option<Augmentation>) -> Self {
        Self {
            model,
            augmentation: augmentation.map(Arc::new),
            copies: 1,
            run_seed: None,
            pictures: None,
            precision: Precision::Fp32,
        }
    }

    /// The classifier `config` trains: `model` with the config's `[augmentation]` (no mixer for
    /// a plain `method = "none"`: one-hot targets straight from the labels), its `k_times`
    /// copies, and dropout reseeded from the run's seed.
    pub fn for_experiment(
        config: &crate::ExperimentConfig,
        model: Model,
    ) -> Result<Self, sal_core::ConfigError> {
        let augmentation = config.augmentation()?;
        let plain = config.augmentation == crate::config::AugmentationTable::default();
        Ok(Self::new(model, (!plain).then_some(augmentation))
            .with_run_seed(config.seed)
            .with_copies(config.augmentation.k_times)
            .with_precision(config.precision))
    }

    /// Runs every step's convolutions (forward, the saliency passes of model-guided mixing,
    /// and the backward pass) in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Reseeds the dropout masks' stream from `seed` and the step at every step.
    pub fn with_run_seed(mut self, seed: u64) -> Self {
        self.run_seed = Some(seed);
        self
    }

    /// Trains each step on `copies` independently mixed copies of its batch (`k_times`,
    /// Saliency Grafting §5.2); 0 counts as 1.
    pub fn with_copies(mut self, copies: usize) -> Self {
        self.copies = copies.max(1);
        self
    }

    /// Draws the first mixed batch of every epoch with `pictures`.
    pub fn with_pictures(mut self, pictures: MixedPictures) -> Self {
        self.pictures = Some(Arc::new(pictures));
        self
    }

    /// Logits and per-sample losses of a batch with its plain one-hot targets.
    fn forward_plain(&self, batch: ImageBatch) -> (Tensor<2>, Tensor<1>) {
        let logits = self.model.forward(batch.images);
        let losses = soft_cross_entropy_per_sample(logits.clone(), one_hot(&batch.labels, &logits));
        (logits, losses)
    }

    /// The batch as `augmentation` mixes it at this step, the model's saliency pass included.
    /// The batch's images move into the mixer (no copy: in-place mixing needs them uniquely
    /// owned). For a map the training step takes from its own forward
    /// (`SaliencyInput::TrainingFeatureMap`) a frozen pass stands in: what pictures and checks
    /// show; the step itself mixes in `mixed_logits`.
    pub fn mix(
        &self,
        augmentation: &Augmentation,
        batch: ImageBatch,
    ) -> Result<MixOutput, MixError> {
        let pass = saliency_pass(&self.model, augmentation.saliency_input(), &batch.labels);
        let (step, part) = (batch.step, batch.part);
        let mut mix_batch = self.mix_batch(batch);
        if let Some(pass) = pass {
            mix_batch.saliency = Some(sal_core::Saliency::Pass(pass));
        }
        augmentation.mix_part(mix_batch, step, part, 0)
    }

    /// The loader's batch as the mixers take it (sal-core counts epochs from 0), with the
    /// partners the loader drew for it (`mix_partner = "global"`).
    fn mix_batch(&self, batch: ImageBatch) -> MixBatch {
        let mix = MixBatch::new(batch.images, batch.labels, self.model.num_classes())
            .with_epoch(batch.epoch - 1);
        match batch.partners {
            Some(partners) => mix.with_partners(partners),
            None => mix,
        }
    }

    /// Logits and soft targets of the samples the step trains on: the method's output for each
    /// of the `copies` independently mixed copies of the batch (copy `c` of the batch's part
    /// mixed with `Augmentation::mix_part`'s stream; copy 0 of part 0 is the step's own
    /// stream), `observe` shown copy 0's output.
    ///
    /// The originals a method keeps in front of its output (`BatchMixer::keeps_originals`:
    /// Saliency Grafting's `with_original`) are trained on once: later copies add only their
    /// mixed rows, and a copy the method leaves unmixed (warm-up, a `prob` miss) adds nothing.
    /// With a training-forward saliency (`SaliencyInput::TrainingFeatureMap`) the originals'
    /// logits are that forward's, and only the mixed rows are forwarded after the mixing. All
    /// other rows go through ONE forward, so BatchNorm updates once with what is trained on.
    /// The model's saliency of the clean batch is computed at most once for all copies.
    fn mixed_logits(
        &self,
        augmentation: &Augmentation,
        batch: ImageBatch,
        observe: &mut dyn FnMut(&MixOutput),
    ) -> Result<(Tensor<2>, Tensor<2>), MixError> {
        let (n, step, part) = (batch.labels.dims()[0], batch.step, batch.part);
        let keeps_originals = augmentation.mixer().keeps_originals();
        let (originals, pass) = match augmentation.saliency_input() {
            SaliencyInput::TrainingFeatureMap => {
                let (logits, features) = self.model.forward_with_features(batch.images.clone());
                // Reduced only if a copy is grafted (detached inside).
                let pass: SaliencyPass =
                    Arc::new(move |_: &Tensor<4>| feature_map_saliency(features.clone()));
                (Some(logits), Some(pass))
            }
            input => (None, saliency_pass(&self.model, input, &batch.labels)),
        };
        let pass = match pass {
            Some(pass) if self.copies > 1 => Some(computed_once(pass)),
            pass => pass,
        };
        let mut forward = Vec::new();
        let mut targets = Vec::new();
        let mut batch = Some(batch);
        for copy in 0..self.copies {
            let this = if copy + 1 == self.copies {
                batch.take().expect("the last copy takes the batch")
            } else {
                batch
                    .clone()
                    .expect("the batch is kept for the later copies")
            };
            let mut mix_batch = self.mix_batch(this);
            mix_batch.saliency = pass.clone().map(sal_core::Saliency::Pass);
            let out = augmentation.mix_part(mix_batch, step, part, copy as u64)?;
            if copy == 0 {
                observe(&out);
            }
            let rows = out.images.dims()[0];
            // Rows of this output already trained on: the originals, when kept and either
            // forwarded by the training forward or given by copy 0.
            let skip = if !(keeps_originals && (copy > 0 || originals.is_some())) {
                0
            } else if out.trace.originals_prepended {
                n
            } else {
                assert!(
                    !out.trace.applied,
                    "{}: keeps the originals but a mixed output lacks them",
                    out.trace.method
                );
                rows
            };
            if copy == 0 && originals.is_some() {
                targets.push(out.targets.clone().narrow(0, 0, n));
            }
            if skip < rows {
                forward.push(out.images.narrow(0, skip, rows - skip));
                targets.push(out.targets.narrow(0, skip, rows - skip));
            }
        }
        let mut logits: Vec<Tensor<2>> = originals.into_iter().collect();
        if !forward.is_empty() {
            logits.push(self.model.forward(cat(forward)));
        }
        Ok((cat(logits), cat(targets)))
    }

    /// The training step's logits, soft targets and the labels accuracy is logged against.
    fn mixed_forward(
        &self,
        augmentation: &Augmentation,
        batch: ImageBatch,
        observe: &mut dyn FnMut(&MixOutput),
    ) -> Mixed {
        let (step, labels) = (batch.step, batch.labels.clone());
        let n = labels.dims()[0];
        let (logits, targets) = self
            .mixed_logits(augmentation, batch, observe)
            .unwrap_or_else(|e| panic!("mixing failed at step {step}: {e}"));
        // Accuracy is logged against the batch's own labels, as the papers' code does; extra
        // (mixed) samples count against their dominant label.
        let labels = if logits.dims()[0] == n {
            labels
        } else {
            let extra = targets.clone().narrow(0, n, logits.dims()[0] - n).argmax(1);
            Tensor::cat(vec![labels, extra.flatten(0, 1)], 0)
        };
        Mixed {
            logits,
            targets,
            labels,
        }
    }
}

/// The batch as `method = "none"` passes it through (for its picture).
fn unmixed(batch: &ImageBatch, num_classes: usize) -> MixOutput {
    let none = sal_core::AugmentationConfig::default()
        .init(0, None)
        .expect("method = \"none\" builds");
    none.mix(
        MixBatch::new(batch.images.clone(), batch.labels.clone(), num_classes),
        0,
    )
    .expect("method = \"none\" passes any batch through")
}

/// The tensors concatenated along the batch dimension (one alone is returned as it is).
fn cat<const D: usize>(mut parts: Vec<Tensor<D>>) -> Tensor<D> {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    Tensor::cat(parts, 0)
}

/// `pass` run once: every copy of a step's batch hands the same clean images, so the first
/// call's map serves the others.
fn computed_once(pass: SaliencyPass) -> SaliencyPass {
    let map = Arc::new(OnceLock::new());
    Arc::new(move |images: &Tensor<4>| map.get_or_init(|| pass(images)).clone())
}

struct Mixed {
    logits: Tensor<2>,
    targets: Tensor<2>,
    labels: Tensor<1, Int>,
}

/// One-hot targets for `labels`, as wide as `logits`, built on the device (burn's `one_hot`
/// reads the labels back to the host to range-check them, a sync point per call).
fn one_hot(labels: &Tensor<1, Int>, logits: &Tensor<2>) -> Tensor<2> {
    let [_, classes] = logits.dims();
    one_hot_targets(labels.clone(), classes, LabelSmoothing::default())
}

impl TrainStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        autocast(self.precision, || self.train_step(batch))
    }
}

impl Classifier {
    /// [`TrainStep::step`] inside its `autocast`.
    fn train_step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        if let Some(seed) = self.run_seed {
            // Each part of a step draws its own masks; part 0 the step's, as a whole batch does.
            let step_seed = match batch.part {
                0 => derive_seed(seed, Stream::Dropout, &[batch.step]),
                part => derive_seed(seed, Stream::Dropout, &[batch.step, part]),
            };
            self.model.reseed_dropout(step_seed);
        }
        let loss_weight = batch.loss_weight;
        // The first batch of an epoch is drawn once, by the part that is the step's start.
        let picture = self
            .pictures
            .as_ref()
            .filter(|p| batch.part == 0 && p.due(batch.epoch));
        let (logits, losses, labels) = match &self.augmentation {
            None => {
                if let Some(pictures) = picture {
                    pictures.write(
                        batch.epoch,
                        batch.step,
                        &batch.images,
                        &batch.labels,
                        &unmixed(&batch, self.model.num_classes()),
                    );
                }
                let labels = batch.labels.clone();
                let (logits, losses) = self.forward_plain(batch);
                (logits, losses, labels)
            }
            Some(augmentation) => {
                // The first batch of an epoch is drawn as copy 0 mixed it (the clean batch
                // kept beside it: once per epoch, the mixing is then not in place).
                let clean = picture.map(|_| (batch.images.clone(), batch.labels.clone()));
                let (epoch, step) = (batch.epoch, batch.step);
                let mut observe = |out: &MixOutput| {
                    if let (Some(pictures), Some((images, labels))) = (picture, &clean) {
                        pictures.write(epoch, step, images, labels, out);
                    }
                };
                let m = self.mixed_forward(augmentation, batch, &mut observe);
                let losses = soft_cross_entropy_per_sample(m.logits.clone(), m.targets);
                (m.logits, losses, m.labels)
            }
        };
        // A part's mean loss weighs by its share of the global batch: the parts' gradients,
        // added by burn-train, are then the gradient of the global batch's mean loss (a whole
        // batch's weight is 1, an exact product).
        let grads = losses.clone().mean().mul_scalar(loss_weight).backward();
        TrainOutput::new(
            self,
            grads,
            ClassificationOutput::new(losses, logits, labels),
        )
    }
}

impl InferenceStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        autocast(self.precision, || {
            let labels = batch.labels.clone();
            let (logits, losses) = self.forward_plain(batch);
            ClassificationOutput::new(losses, logits, labels)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::{Device, Distribution, TensorData};
    use sal_core::AugmentationConfig;
    use sal_models::{Architecture, ModelConfig};

    fn tiny_model(device: &Device) -> (ModelConfig, Model) {
        let config = ModelConfig::new("cifar-resnet18".parse::<Architecture>().unwrap(), 4)
            .with_base_width(Some(4));
        device.seed(5);
        let model = config.init(device);
        (config, model)
    }

    /// Every float tensor of the model, running statistics synchronised (`valid` merges the
    /// pending BatchNorm updates), in visiting order.
    fn state(model: &Model) -> Vec<Vec<f32>> {
        struct Collect(Vec<Vec<f32>>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0
                    .push(param.val().into_data().try_to_vec::<f32>().unwrap());
            }
        }
        let mut collect = Collect(Vec::new());
        model.valid().visit(&mut collect);
        collect.0
    }

    fn batch(n: usize, epoch: usize, device: &Device) -> ImageBatch {
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
        ImageBatch::new(
            Tensor::random([n, 3, 16, 16], Distribution::Normal(0.0, 1.0), device),
            Tensor::from_data(TensorData::new(labels, [n]), device),
            epoch,
            11,
        )
    }

    /// One training step of `method` leaves the BatchNorm running statistics exactly as ONE
    /// training-mode forward of the batch the step trains on (the mixer's output): the saliency
    /// pass, where there is one, updates nothing.
    fn assert_one_batch_norm_update(method: &str, epoch: usize) {
        let (classifier, twin, mixer) = copies_of(method, 1);
        let device = classifier.model.devices()[0].clone();
        let batch = batch(6, epoch, &device);
        let trained_on = classifier.mix(&mixer, batch.clone()).unwrap().images;
        let before = state(&classifier.model);
        let _ = TrainStep::step(&classifier, batch);
        assert_ne!(
            state(&classifier.model),
            before,
            "{method}: no update at all"
        );
        twin.forward(trained_on);
        assert!(
            state(&classifier.model) == state(&twin),
            "{method} (epoch {epoch}): the running statistics are not one update with the \
             mixed batch"
        );
    }

    #[test]
    fn model_guided_steps_update_batch_norm_once_with_the_batch_they_train_on() {
        assert_one_batch_norm_update("method = \"salfmix\"", 1);
        assert_one_batch_norm_update(
            "method = \"hybridmix\"\nwarmup_epochs = 0\n[mix]\nmethod = \"cutmix\"",
            1,
        );
        // Originals and grafted images as one 2N batch after a frozen pass; the grafted ones
        // alone; the warm-up (the default's training forward of the clean batch, nothing else).
        let grafting = "method = \"saliency-grafting\"\nwarmup_epochs = 1\nwith_original = ";
        assert_one_batch_norm_update(&format!("{grafting}true\nfeature_map = \"frozen-pass\""), 2);
        assert_one_batch_norm_update(&format!("{grafting}false"), 2);
        assert_one_batch_norm_update(&format!("{grafting}true"), 1);
    }

    #[test]
    fn grafting_from_the_training_forward_updates_batch_norm_once_with_each_half() {
        // The default step: the clean batch's training forward (one update with the clean
        // batch) gives the feature map; the grafted half alone is forwarded next (one update
        // with it). A twin repeats exactly that; any other forward in training mode, or the
        // map taken from another pass, leaves different statistics.
        let method = "method = \"saliency-grafting\"\nwarmup_epochs = 1";
        let (classifier, twin, mixer) = copies_of(method, 1);
        let (n, batch) = (6, batch(6, 2, &classifier.model.devices()[0]));
        let (_, features) = twin.forward_with_features(batch.images.clone());
        let twin_batch = MixBatch::new(batch.images.clone(), batch.labels.clone(), 4)
            .with_epoch(1)
            .with_saliency(feature_map_saliency(features));
        let out = mixer.mix(twin_batch, batch.step).unwrap();
        assert!(out.trace.applied && out.trace.originals_prepended);
        twin.forward(out.images.narrow(0, n, n));
        let before = state(&classifier.model);
        let _ = TrainStep::step(&classifier, batch);
        assert_ne!(state(&classifier.model), before, "no update at all");
        assert!(
            state(&classifier.model) == state(&twin),
            "the running statistics are not one update with the clean batch, then one with \
             the grafted images"
        );
    }

    /// Host values of a tensor.
    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// A classifier of `method` (TOML) training on `copies` copies, its twin (same weights),
    /// and the mixer.
    fn copies_of(method: &str, copies: usize) -> (Classifier, Model, Arc<Augmentation>) {
        let device = Device::flex().autodiff();
        let (config, model) = tiny_model(&device);
        let twin = config
            .init(&device)
            .load_record(model.clone().into_record());
        let augmentation: AugmentationConfig = toml::from_str(method).unwrap();
        let classifier =
            Classifier::new(model, Some(augmentation.init(3, None).unwrap())).with_copies(copies);
        let mixer = classifier.augmentation.clone().unwrap();
        (classifier, twin, mixer)
    }

    /// Every parameter's gradient in `grads`, in the model's visiting order.
    fn gradients(model: &Model, grads: &burn::optim::GradientsParams) -> Vec<Vec<f32>> {
        struct Collect<'a>(&'a burn::optim::GradientsParams, Vec<Vec<f32>>);
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(grad) = self.0.get::<D>(param.id) {
                    self.1.push(grad.into_data().try_to_vec::<f32>().unwrap());
                }
            }
        }
        let mut collect = Collect(grads, Vec::new());
        model.visit(&mut collect);
        collect.1
    }

    #[test]
    fn a_parts_gradient_weighs_by_its_share_and_each_part_mixes_on_its_own() {
        let (classifier, _, mixer) = copies_of("method = \"cutmix\"", 1);
        let device = classifier.model.devices()[0].clone();
        let whole = batch(6, 1, &device);
        let step_grads = |batch: ImageBatch| {
            let grads = TrainStep::step(&classifier, batch).grads;
            gradients(&classifier.model, &grads)
        };
        let full = step_grads(whole.clone());
        let quarter = step_grads(ImageBatch {
            loss_weight: 0.25,
            ..whole.clone()
        });
        assert_eq!(full.len(), quarter.len());
        assert!(full.len() > 10);
        for (f, q) in full.iter().zip(&quarter) {
            for (f, q) in f.iter().zip(q) {
                assert!(
                    (q - 0.25 * f).abs() <= 1e-6 * f.abs().max(1.0),
                    "{q} vs {f} / 4"
                );
            }
        }
        // Part 1 of the same step draws another stream than part 0 (the step's own).
        let mixed = |part| {
            let batch = ImageBatch {
                part,
                ..whole.clone()
            };
            classifier.mix(&mixer, batch).unwrap().targets.into_data()
        };
        assert_eq!(mixed(0), mixed(0));
        assert_ne!(mixed(0), mixed(1));
    }

    /// Copy `copy` of the step's mixing, as `Augmentation::mix_copy` makes it on its own.
    fn copy(
        mixer: &Augmentation,
        batch: &ImageBatch,
        copy: u64,
        saliency: Option<Tensor<3>>,
    ) -> MixOutput {
        let mut b = MixBatch::new(batch.images.clone(), batch.labels.clone(), 4)
            .with_epoch(batch.epoch - 1);
        if let Some(s) = saliency {
            b = b.with_saliency(s);
        }
        mixer.mix_copy(b, batch.step, copy).unwrap()
    }

    #[test]
    fn k_times_trains_on_k_independent_copies_in_one_forward() {
        let (classifier, twin, mixer) = copies_of("method = \"cutmix\"\nprob = 1.0", 3);
        let (n, batch) = (6, batch(6, 1, &classifier.model.devices()[0]));
        let outs: Vec<MixOutput> = (0..3).map(|c| copy(&mixer, &batch, c, None)).collect();
        let mut observed = None;
        let (logits, targets) = classifier
            .mixed_logits(&mixer, batch.clone(), &mut |out| {
                observed = Some(out.clone())
            })
            .unwrap();
        assert_eq!(logits.dims(), [3 * n, 4]);
        // The rows are the three copies in order; copy 0 is what a step without copies mixes,
        // and it is the one shown to the pictures.
        let want: Vec<f32> = outs.iter().flat_map(|o| host(o.targets.clone())).collect();
        assert_eq!(host(targets), want);
        let alone = copy(&mixer, &batch, 0, None);
        let single = mixer.mix(
            MixBatch::new(batch.images.clone(), batch.labels.clone(), 4),
            batch.step,
        );
        assert_eq!(host(alone.images.clone()), host(single.unwrap().images));
        assert_eq!(host(observed.unwrap().images), host(alone.images));
        // Independent draws: the copies' partners or boxes differ.
        let traces: Vec<_> = outs
            .iter()
            .map(|o| format!("{:?}", o.trace.samples()))
            .collect();
        assert!(
            traces[0] != traces[1] && traces[1] != traces[2],
            "{traces:?}"
        );
        // ONE forward of all 3N rows: the running statistics are one update with them.
        twin.forward(Tensor::cat(outs.into_iter().map(|o| o.images).collect(), 0));
        assert!(state(&classifier.model) == state(&twin));
    }

    #[test]
    fn k_times_grafting_trains_on_the_originals_once() {
        // The default (training forward): the clean batch forwarded once, the K grafted halves
        // as one batch after it.
        let method = "method = \"saliency-grafting\"\nwarmup_epochs = 1";
        let (classifier, twin, mixer) = copies_of(method, 3);
        let (n, batch) = (6, batch(6, 2, &classifier.model.devices()[0]));
        let (_, features) = twin.forward_with_features(batch.images.clone());
        let map = feature_map_saliency(features);
        let outs: Vec<MixOutput> = (0..3)
            .map(|c| copy(&mixer, &batch, c, Some(map.clone())))
            .collect();
        assert!(outs.iter().all(|o| o.trace.originals_prepended));
        let (logits, targets) = classifier
            .mixed_logits(&mixer, batch.clone(), &mut |_| {})
            .unwrap();
        assert_eq!(logits.dims(), [4 * n, 4]);
        let mut want = host(outs[0].targets.clone());
        for o in &outs[1..] {
            want.extend(host(o.targets.clone().narrow(0, n, n)));
        }
        assert_eq!(host(targets), want);
        let grafted = outs
            .iter()
            .map(|o| o.images.clone().narrow(0, n, n))
            .collect();
        twin.forward(Tensor::cat(grafted, 0));
        assert!(state(&classifier.model) == state(&twin));

        // The frozen pass: copy 0 whole (originals + grafted), the later copies' grafted rows.
        let frozen = format!("{method}\nfeature_map = \"frozen-pass\"");
        let (classifier, _, mixer) = copies_of(&frozen, 2);
        let (logits, _) = classifier
            .mixed_logits(&mixer, batch.clone(), &mut |_| {})
            .unwrap();
        assert_eq!(logits.dims(), [3 * n, 4]);

        // Warm-up: no copy grafts, the step trains on the originals alone.
        let (classifier, _, mixer) = copies_of(method, 3);
        let warm_up = ImageBatch { epoch: 1, ..batch };
        let (logits, targets) = classifier
            .mixed_logits(&mixer, warm_up, &mut |_| {})
            .unwrap();
        assert_eq!((logits.dims(), targets.dims()), ([n, 4], [n, 4]));
    }

    #[test]
    fn a_shared_saliency_pass_runs_once() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let pass: SaliencyPass = Arc::new(move |images: &Tensor<4>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            images.clone().sum_dim(1).squeeze_dim(1)
        });
        let once = computed_once(pass);
        let images = Tensor::<4>::ones([2, 3, 4, 4], &Device::flex());
        let first = host(once(&images));
        assert_eq!(host(once(&images)), first);
        assert_eq!(first[0], 3.0);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn the_step_mixes_the_loaders_batch_in_place_on_flex() {
        // The loader's batch is uniquely owned: Mixup's in-place blend must reuse its buffer.
        let device = Device::flex().autodiff();
        let (_, model) = tiny_model(&device);
        let augmentation: AugmentationConfig = toml::from_str("method = \"mixup\"").unwrap();
        let classifier = Classifier::new(model, Some(augmentation.init(3, None).unwrap()));
        let mixer = classifier.augmentation.clone().unwrap();
        let n = 6;
        let values: Vec<f32> = (0..n * 3 * 16 * 16)
            .map(|i| (i % 97) as f32 / 97.0)
            .collect();
        let address = values.as_ptr() as usize;
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
        let batch = ImageBatch::new(
            Tensor::from_data(TensorData::new(values, [n, 3, 16, 16]), &device),
            Tensor::from_data(TensorData::new(labels, [n]), &device),
            1,
            0,
        );
        let mixed = classifier.mix(&mixer, batch).unwrap().images.into_data();
        assert_eq!(
            mixed.as_bytes().as_ptr() as usize,
            address,
            "the batch was copied to be mixed"
        );
    }

    #[test]
    fn soft_cross_entropy_is_the_lambda_weighted_sum_of_hard_losses() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, -1.0, 0.5, 0.1, 0.2, 3.0], [2, 3]),
            &device,
        );
        let onehot = |rows: [[f32; 3]; 2]| {
            Tensor::<2>::from_data(TensorData::new(rows.concat(), [2, 3]), &device)
        };
        let ya = onehot([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
        let yb = onehot([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);
        let lam = 0.3f32;
        let mixed = ya.clone() * lam + yb.clone() * (1.0 - lam);
        let got: f32 = soft_cross_entropy(logits.clone(), mixed).into_scalar();
        let la: f32 = soft_cross_entropy(logits.clone(), ya).into_scalar();
        let lb: f32 = soft_cross_entropy(logits.clone(), yb).into_scalar();
        assert!((got - (lam * la + (1.0 - lam) * lb)).abs() < 1e-6);
        // Hand value of the first row's hard loss: logsumexp(2, -1, 0.5) - 2.
        let row0 = ((2f32).exp() + (-1f32).exp() + (0.5f32).exp()).ln() - 2.0;
        let row1 = ((0.1f32).exp() + (0.2f32).exp() + (3f32).exp()).ln() - 3.0;
        assert!((la - (row0 + row1) / 2.0).abs() < 1e-6);
    }
}
