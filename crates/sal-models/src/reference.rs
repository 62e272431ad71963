//! The parameter counts of the reference implementations the papers trained (`docs/models.md`
//! lists each source): what a paper-table config's model must have, checked by the model tests
//! here and by the config tests of `experiments/`.

/// One network at one class count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceCount {
    /// The [`crate::Architecture`] name.
    pub architecture: &'static str,
    pub classes: usize,
    pub parameters: usize,
}

const fn count(architecture: &'static str, classes: usize, parameters: usize) -> ReferenceCount {
    ReferenceCount {
        architecture,
        classes,
        parameters,
    }
}

/// Counted by instantiating the reference PyTorch modules (SaliencyMix `model/resnet.py` and
/// `model/wide_resnet.py`, CutMix `pyramidnet.py`, kuangliu's `preact_resnet.py` plus the final
/// BN of He et al. 2016, torchvision-layout `resnet.py`) in torch 2.15; the ImageNet ResNets at
/// 1000 classes are torchvision's published counts.
pub const REFERENCE_COUNTS: &[ReferenceCount] = &[
    count("cifar-resnet18", 10, 11_173_962),
    count("cifar-resnet18", 100, 11_220_132),
    count("cifar-resnet34", 10, 21_282_122),
    count("cifar-resnet34", 100, 21_328_292),
    count("cifar-resnet50", 10, 23_520_842),
    count("cifar-resnet50", 100, 23_705_252),
    count("cifar-resnet101", 10, 42_512_970),
    count("cifar-resnet101", 100, 42_697_380),
    count("cifar-resnet152", 10, 58_156_618),
    count("cifar-resnet152", 100, 58_341_028),
    count("preact-resnet18", 10, 11_172_170),
    count("preact-resnet18", 100, 11_218_340),
    count("preact-resnet34", 10, 21_280_330),
    count("preact-resnet34", 100, 21_326_500),
    count("preact-resnet50", 10, 23_513_162),
    count("preact-resnet50", 100, 23_697_572),
    count("preact-resnet101", 10, 42_505_290),
    count("preact-resnet101", 100, 42_689_700),
    count("preact-resnet152", 10, 58_148_938),
    count("preact-resnet152", 100, 58_333_348),
    count("wrn-16-8", 10, 10_961_370),
    count("wrn-16-8", 100, 11_007_540),
    count("wrn-28-10", 10, 36_479_194),
    count("wrn-28-10", 100, 36_536_884),
    count("pyramidnet110-a64", 10, 1_696_410),
    count("pyramidnet110-a64", 100, 1_725_300),
    count("pyramidnet110-a48-basic", 10, 1_772_706),
    count("pyramidnet110-a48-basic", 100, 1_778_556),
    count("pyramidnet200-a240", 10, 26_752_702),
    count("pyramidnet200-a240", 100, 26_844_952),
    count("pyramidnet272-a200", 10, 26_210_842),
    count("pyramidnet272-a200", 100, 26_288_692),
    count("resnet18", 10, 11_181_642),
    count("resnet18", 100, 11_227_812),
    count("resnet50", 10, 23_528_522),
    count("resnet50", 100, 23_712_932),
    // Tiny-ImageNet's 200 classes: the 10-class count plus the linear head's (features + 1)
    // weights for each of 190 more classes (512 + 1 for the 18, 2048 + 1 for the 50 and 101).
    count("preact-resnet18", 200, 11_172_170 + 190 * 513),
    count("preact-resnet50", 200, 23_513_162 + 190 * 2049),
    count("preact-resnet101", 200, 42_505_290 + 190 * 2049),
    count("resnet18", 1000, 11_689_512),
    count("resnet34", 1000, 21_797_672),
    count("resnet50", 1000, 25_557_032),
    count("resnet101", 1000, 44_549_160),
    count("resnet152", 1000, 60_192_808),
    // RegNetX-200MF: yhhhli/RegNet-Pytorch's CIFAR model at 10 classes ("2.31 M") and 100
    // (SalfMix Table 6, "2.3 M"), counted from its module definitions; torchvision's published
    // `regnet_x_200mf` count at 1000 (the layouts differ in strides only).
    count("cifar-regnetx-200mf", 10, 2_319_482),
    count("cifar-regnetx-200mf", 100, 2_352_692),
    count("regnetx-200mf", 1000, 2_684_792),
];

/// The reference count of `architecture` (its name) at `classes`, if the table has it.
pub fn reference_count(architecture: &str, classes: usize) -> Option<usize> {
    REFERENCE_COUNTS
        .iter()
        .find(|r| r.architecture == architecture && r.classes == classes)
        .map(|r| r.parameters)
}
