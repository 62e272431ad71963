# OpenCV peer of `cargo xtask bench saliency`: OpenCV's static saliency detectors on the same
# images as the Rust side. Saves its maps (for the agreement check) and the agreement-check
# outputs under the directories the config names, and prints its timings as one JSON object.
#
# argv: config-json (sizes, methods, out_dir, batch_runs, check; see `time_opencv` in
# saliency.rs)
import json, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import cv2, numpy as np

cfg = json.loads(sys.argv[1])
cv2.setNumThreads(1)
make = {
    'fine-grained': cv2.saliency.StaticSaliencyFineGrained_create,
    'spectral-residual': cv2.saliency.StaticSaliencySpectralResidual_create,
}
threads = os.cpu_count()
out = {'opencv': cv2.__version__, 'threads': threads, 'single': {}, 'batch': {}}
for size, spec in cfg['sizes'].items():
    imgs = [np.load(p) for p in spec['paths']]
    for method in cfg['methods']:
        det = make[method]()
        for i, x in enumerate(imgs):
            ok, m = det.computeSaliency(x)
            assert ok
            np.save(os.path.join(cfg['out_dir'], f'{method}_{size}_{i}.npy'), m)
        times = []
        for x in imgs:
            det.computeSaliency(x)
            for _ in range(spec['repeats']):
                t = time.perf_counter()
                det.computeSaliency(x)
                times.append(time.perf_counter() - t)
        out['single'][f'{method}/{size}'] = float(np.median(times))
        batch = [imgs[i % len(imgs)] for i in range(spec['batch'])]
        local = threading.local()
        def work(x, method=method):
            if not hasattr(local, 'det'):
                local.det = make[method]()
            return local.det.computeSaliency(x)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, batch))
            runs = []
            for _ in range(cfg['batch_runs']):
                t = time.perf_counter()
                list(pool.map(work, batch))
                runs.append(time.perf_counter() - t)
        out['batch'][f'{method}/{size}'] = len(batch) / float(np.median(runs))
check = cfg['check']
for i in range(check['images']):
    x = np.load(os.path.join(check['dir'], f'img_{i}.npy'))
    xf = np.load(os.path.join(check['dir'], f'imgf_{i}.npy'))
    np.save(os.path.join(check['dir'], f'cv_fg_{i}.npy'), make['fine-grained']().computeSaliency(x)[1])
    np.save(os.path.join(check['dir'], f'cv_sr_{i}.npy'), make['spectral-residual']().computeSaliency(x)[1])
    np.save(os.path.join(check['dir'], f'cv_fgp_{i}.npy'), make['fine-grained']().computeSaliency(xf)[1])
frames = np.load(os.path.join(check['dir'], 'frames.npy'))
wd = cv2.saliency.MotionSaliencyBinWangApr2014_create()
wd.setImagesize(frames.shape[2], frames.shape[1])
wd.init()
masks = np.stack([wd.computeSaliency(np.ascontiguousarray(f))[1].copy() for f in frames])
np.save(os.path.join(check['dir'], 'cv_wd.npy'), masks)
print(json.dumps(out))
