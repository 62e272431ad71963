//! Runtime CPU dispatch for the hot loops: `avx2_fma_dispatch!` defines a function that runs its
//! body compiled for AVX2 + FMA when the CPU has them (wider vectors, one-instruction fused
//! multiply-add) and the portable build otherwise. Both builds compute the same bits: the loops
//! use only IEEE-754 operations, and `f32::mul_add` is a correctly rounded fused multiply-add on
//! every target (the portable build merely calls a slower routine for it).

/// `avx2_fma_dispatch!(pub(crate) fn name(args...) -> Ret => body_fn);` where `body_fn` is an
/// `#[inline(always)]` function with the same signature.
macro_rules! avx2_fma_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2_fma($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: `with_avx2_fma` only requires the CPU features it is compiled
                    // for, and both were detected just above.
                    #[allow(unsafe_code)]
                    return unsafe { with_avx2_fma($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use avx2_fma_dispatch;
