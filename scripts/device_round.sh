#!/usr/bin/env bash
# One round of GPU training on the lent machine, driven over consecutive device calls of one
# hold (each call: `bash scripts/device_round.sh STEP...`; a call on a fresh machine must start
# with `setup`). Runs live in /tmp (carried paths are replaced at every call); trainers are
# started with setsid, so they keep running between calls.
#
#   setup                 install the carried wheels (.whl), build the coder (idempotent)
#   stage NAME...         copy carried .carry/NAME folders into /tmp/data/NAME (training parts),
#                         /tmp/val/NAME (names starting with "val") or /tmp/video/NAME (names
#                         starting with "video": video training parts, kept out of image training)
#   keep-weights          copy the tree's shipped weights and any carried .carry/init/*.safetensors
#                         to /tmp/init (a later call may leave them out of the tree to fit the
#                         carry limit); campaign runs take --init from there first
#   bench [ARGS]          bench/train_speed.py ARGS (default: the fast configs of hyperprior and
#                         gmm-ctx) -> $OUT/train_speed.txt
#   video-speed [ARGS]    bench/video_train_speed.py ARGS (video-rt training steps/s by precision,
#                         compile and batch) -> $OUT/video_train_speed.txt
#   pytest ARGS           python -m pytest ARGS on this machine (e.g. the GPU-only tests)
#   main CODEC MIN [ARGS] start (or resume with the data staged so far) the campaign run of CODEC:
#                         --init its shipped weights, fast defaults, EMA, an LR schedule that
#                         ends with MIN minutes of training time
#   chain CODEC MIN [ARGS] + CODEC MIN [ARGS] ...
#                         one background job that trains the codecs one after another (each as
#                         `main` would, GPU to itself); `status`/`waitfor chain` follow it
#   compare SPEC MIN      start the equal-compute comparison (python -m neuralcodec.train.compare)
#   restart CODEC MIN     stop the run of CODEC (checkpoint), start it again on all staged data
#   video-compare SPEC MIN [ARGS]  start the equal-data comparison of video-rt variants
#                         (python -m neuralcodec.video.compare) on the staged video parts
#                         (/tmp/video/video-*, made by python -m neuralcodec.video.pack), stills
#                         from /tmp/data/part-01 if staged, validation on /tmp/val/val-video-01
#                         (read at the first validation, so it may be staged while training runs)
#   video-train MIN [ARGS]  start (or resume) train-video on the staged video parts, from the
#                         shipped video-rt weights, at its CUDA defaults (batch 32, bf16, CUDA graphs;
#                         ARGS: e.g. --config/--init-partial for a variant)
#   probe MIN [ARGS]      start scripts/video_mse_probe.py (MSE-only capacity probe of the P-frame
#                         transforms, ARGS: its --config variants) on the CUDA device, training
#                         clips /tmp/video/video-probe/*, ceiling on /tmp/val/val-probe/* ->
#                         $RUNS/probe/probe.json
#   video-bench [WEIGHTS] bench/video.py at 1080p on a held-out DAVIS clip -> $OUT/video_speed.txt
#                         (WEIGHTS, e.g. a video-compare variant's /tmp/runs/video-compare/NAME.safetensors;
#                         else the video-train run's if it exported some, else the shipped ones)
#   wait SECONDS          print progress every 60 s for SECONDS (keeps the call busy, not idle)
#   until SECONDS         the same, until this script has run SECONDS in all
#   waitfor NAME... SECS  wait (at most SECS) until the named runs' processes have ended
#   collect               copy exported weights, logs, plots and results to $OUT
#   status                one line per run
# Steps are separated by '+' (a chain's runs too; '++' ends a chain).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=/tmp/runs
mkdir -p "$RUNS" /tmp/data /tmp/val /tmp/video
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

say() { echo "[$(date +%H:%M:%S)] $*"; }

do_setup() {
    if [ -f /tmp/.nc_ready ]; then say "setup: already done on this machine"; return 0; fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || return 1
    python3 setup.py -q build_ext --inplace >/tmp/build.log 2>&1 || { cat /tmp/build.log; return 1; }
    python3 -c "import torch, neuralcodec.codecs.registry as r; print('torch', torch.__version__, torch.cuda.get_device_name())" || return 1
    nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
    touch /tmp/.nc_ready
    say "setup done"
}

do_stage() {
    for name in "$@"; do
        [ -d ".carry/$name" ] || { say "stage: .carry/$name was not carried"; return 1; }
        case "$name" in val*) dst=/tmp/val/$name ;; video*) dst=/tmp/video/$name ;; *) dst=/tmp/data/$name ;; esac
        rm -rf "$dst.tmp" && cp -r ".carry/$name" "$dst.tmp" && rm -rf "$dst" && mv "$dst.tmp" "$dst"
        say "staged $name -> $dst ($(find "$dst" -type f | wc -l) files)"
    done
}

train_args() {  # CODEC MIN [extra train args] -> the argument list of one campaign run, in ARGS
    local codec=$1 minutes=$2; shift 2
    local init=/tmp/init/$codec.safetensors
    [ -f "$init" ] || init=src/neuralcodec/weights/$codec.safetensors
    local initarg=(); [ -f "$init" ] && initarg=(--init "$init")
    ARGS=(-m neuralcodec train --codec "$codec" --data /tmp/data --out "$RUNS/$codec"
        "${initarg[@]}" --steps 1000000 --time-budget "$minutes" --lr 1e-4 --lr-schedule cosine
        --ema 0.999 --workers 16 --val /tmp/val/val4 --val-every 4000 --val-qualities 1 3 5 8
        --val-max-images 4 --ckpt-every 2000 --keep 2 --resume --no-progress --log-every 200
        --export "$RUNS/$codec.safetensors" "$@")
}

start_chain() {  # "CODEC MIN ARGS..." strings, run one after another in one setsid job
    local script=$RUNS/chain.sh
    echo "cd $PWD" >"$script"
    for spec in "$@"; do
        # shellcheck disable=SC2086
        set -- $spec    # CODEC MIN [ARGS]
        train_args "$@"
        mkdir -p "$RUNS/$1"
        printf 'python3' >>"$script"; printf ' %q' "${ARGS[@]}" >>"$script"
        printf ' >>%q 2>&1\n' "$RUNS/$1.log" >>"$script"
    done
    setsid nohup bash "$script" >>"$RUNS/chain.out" 2>&1 </dev/null &
    echo "$!" >"$RUNS/chain.pid"
    say "started chain (pid $!): $(grep -c python3 "$script") runs, data: $(ls /tmp/data | tr '\n' ' ')"
}

start_main() {  # CODEC MIN [extra train args]
    local codec=$1 minutes=$2; shift 2
    mkdir -p "$RUNS/$codec"
    [ $# -gt 0 ] && printf '%s\n' "$@" >"$RUNS/$codec.args"    # a restart reuses them
    [ $# -eq 0 ] && [ -f "$RUNS/$codec.args" ] && mapfile -t extra_args <"$RUNS/$codec.args" && set -- "${extra_args[@]}"
    train_args "$codec" "$minutes" "$@"
    setsid nohup python3 "${ARGS[@]}" >>"$RUNS/$codec.log" 2>&1 </dev/null &
    echo "$!" >"$RUNS/$codec.pid"
    say "started $codec (pid $!), data: $(ls /tmp/data | tr '\n' ' ')"
}

stop_run() {  # CODEC: SIGTERM, wait for the checkpoint and exit
    local pid; pid=$(cat "$RUNS/$1.pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 180); do kill -0 "$pid" 2>/dev/null || { say "stopped $1"; return 0; }; sleep 1; done
    kill -KILL "$pid" 2>/dev/null; sleep 2; say "killed $1 (no clean stop within 180 s)"
}

start_compare() {  # SPEC MIN
    mkdir -p "$RUNS/compare"
    setsid nohup python3 -m neuralcodec.train.compare --spec "$1" --data /tmp/data/part-01 \
        --out "$RUNS/compare" --steps 1000000 --minutes "$2" --batch-size 64 --crop 256 \
        --val /tmp/val/val24 --val-max-images 24 --val-qualities 1 3 5 8 --val-fractions \
        --warmup-steps 100 --log-every 200 >>"$RUNS/compare.log" 2>&1 </dev/null &
    echo "$!" >"$RUNS/compare.pid"
    say "started compare (pid $!)"
}

video_data() {  # the staged training parts and stills of the video steps
    video_dirs=(/tmp/video/video-*); stills=(); [ -d /tmp/data/part-01 ] && stills=(--images /tmp/data/part-01)
    [ -d "${video_dirs[0]}" ] || { say "no video parts staged (stage video-01 first)"; return 1; }
}

start_video_compare() {  # SPEC MIN [extra compare args, e.g. --val-frames 16: later ones win]
    video_data || return 1
    local spec=$1 minutes=$2; shift 2
    mkdir -p "$RUNS/video-compare"
    setsid nohup python3 -m neuralcodec.video.compare --spec "$spec" --video "${video_dirs[@]}" "${stills[@]}" \
        --out "$RUNS/video-compare" --steps 1000000 --minutes "$minutes" --batch-size 8 --frames 13 --crop 256 \
        --val /tmp/val/val-video-01 --val-frames 30 --val-qualities 2 4 6 8 --val-fractions 0.5 \
        --log-every 100 --export "$@" >>"$RUNS/video-compare.log" 2>&1 </dev/null &
    echo "$!" >"$RUNS/video-compare.pid"
    say "started video-compare (pid $!), data: ${video_dirs[*]} ${stills[*]}"
}

start_video_train() {  # MIN [extra train-video args]
    video_data || return 1
    local minutes=$1; shift
    mkdir -p "$RUNS/video-rt"
    local init=/tmp/init/video-rt.safetensors
    [ -f "$init" ] || init=src/neuralcodec/weights/video-rt.safetensors
    setsid nohup python3 -m neuralcodec train-video --out "$RUNS/video-rt" --video "${video_dirs[@]}" \
        "${stills[@]}" --synthetic 0.25 --init "$init" --steps 1000000 \
        --frames 9 --crop 256 --lr 2e-4 --max-minutes "$minutes" --log-every 200 \
        --ckpt-every 1000 --resume --no-progress --export "$RUNS/video-rt.safetensors" "$@" \
        >>"$RUNS/video-rt.log" 2>&1 </dev/null &
    echo "$!" >"$RUNS/video-rt.pid"
    say "started video-rt training (pid $!), data: ${video_dirs[*]} ${stills[*]}"
}

start_probe() {  # MIN [probe args]
    local minutes=$1; shift
    local held; held=$(ls -d /tmp/val/val-probe/*/ 2>/dev/null | head -n 1)
    [ -d /tmp/video/video-probe ] && [ -n "$held" ] || { say "probe: stage video-probe and val-probe first"; return 1; }
    mkdir -p "$RUNS/probe"
    setsid nohup python3 scripts/video_mse_probe.py --device cuda --minutes "$minutes" --batch-size 16 \
        --crop 256 --size 640 360 --frames-per-clip 36 --eval-every 45 --frames /tmp/video/video-probe/*/ \
        --held "$held" --out "$RUNS/probe/probe.json" "$@" >>"$RUNS/probe.log" 2>&1 </dev/null &
    echo "$!" >"$RUNS/probe.pid"
    say "started probe (pid $!)"
}

do_video_bench() {  # [WEIGHTS]
    local weights=${1:-}
    [ -z "$weights" ] && [ -f "$RUNS/video-rt.safetensors" ] && weights=$RUNS/video-rt.safetensors
    [ -z "$weights" ] || [ -f "$weights" ] || { say "video-bench: no weights file $weights"; return 1; }
    local clip; clip=$(ls -d /tmp/val/val-video-*/davis_* 2>/dev/null | head -n 1)
    python3 bench/video.py --no-cpu ${weights:+--weights "$weights"} ${clip:+--input "$clip"} \
        2>&1 | grep -v Warning | tee "${OUT:-/tmp}/video_speed.txt"
}

do_keep_weights() {
    mkdir -p /tmp/init
    for f in src/neuralcodec/weights/*.safetensors .carry/init/*.safetensors; do
        [ -f "$f" ] && cp "$f" /tmp/init/ && say "kept $(basename "$f") in /tmp/init"
    done
    return 0
}

do_status() {
    for log in "$RUNS"/*.log; do
        [ -f "$log" ] || continue
        echo "--- $(basename "$log"): $(grep -c . "$log") lines"
        tail -n 3 "$log" | cut -c1-400
    done
    nvidia-smi --query-gpu=utilization.gpu,memory.used,clocks.sm --format=csv,noheader 2>/dev/null
}

do_collect() {
    [ -n "${OUT:-}" ] || return 0
    for f in "$RUNS"/*.safetensors; do
        case "$f" in *.init.safetensors) continue ;; esac
        [ -f "$f" ] && cp "$f" "$OUT/"
    done
    for codec_dir in "$RUNS"/*/; do
        name=$(basename "$codec_dir")
        tar -czf "$OUT/run-$name.tgz" -C "$RUNS" --exclude checkpoints --exclude tb "$name" "$name.log" 2>/dev/null
    done
    ls -la "$OUT"
}

step_args() {  # ARGS... -> STEP_ARGS: the arguments up to the next step separator ('+', '++')
    STEP_ARGS=()
    for arg in "$@"; do [[ "$arg" == +* ]] && break; STEP_ARGS+=("$arg"); done
}

while [ $# -gt 0 ]; do
    step=$1; shift
    case "$step" in
        setup) do_setup || exit 1 ;;
        stage) step_args "$@"; shift ${#STEP_ARGS[@]}; do_stage "${STEP_ARGS[@]}" || exit 1 ;;
        bench) step_args "$@"; shift ${#STEP_ARGS[@]}
               [ ${#STEP_ARGS[@]} -eq 0 ] && STEP_ARGS=(--configs base bf16-cl default --codecs hyperprior gmm-ctx)
               python3 bench/train_speed.py "${STEP_ARGS[@]}" 2>&1 | grep -v Warning | tee "${OUT:-/tmp}/train_speed.txt" ;;
        video-speed) step_args "$@"; shift ${#STEP_ARGS[@]}
                     python3 bench/video_train_speed.py "${STEP_ARGS[@]}" 2>&1 | grep -v Warning | tee "${OUT:-/tmp}/video_train_speed.txt" ;;
        keep-weights) do_keep_weights ;;
        pytest) step_args "$@"; shift ${#STEP_ARGS[@]}
                python3 -m pytest -p no:cacheprovider -p no:logging --tb=short "${STEP_ARGS[@]}" 2>&1 | tail -n 60 ;;
        main) codec=$1 minutes=$2; shift 2; step_args "$@"; shift ${#STEP_ARGS[@]}
              start_main "$codec" "$minutes" "${STEP_ARGS[@]}" ;;
        restart) codec=$1 minutes=$2; shift 2; stop_run "$codec"; start_main "$codec" "$minutes" ;;
        compare) start_compare "$1" "$2"; shift 2 ;;
        chain) specs=(); cur=""
               while [ $# -gt 0 ] && [[ "$1" != ++ ]]; do
                   if [ "$1" = + ]; then specs+=("$cur"); cur=""; else cur="$cur $1"; fi; shift
               done
               [ -n "$cur" ] && specs+=("$cur"); [ $# -gt 0 ] && shift
               start_chain "${specs[@]}" ;;
        video-compare) spec=$1 minutes=$2; shift 2; step_args "$@"; shift ${#STEP_ARGS[@]}
                       start_video_compare "$spec" "$minutes" "${STEP_ARGS[@]}" || exit 1 ;;
        video-train) minutes=$1; shift; step_args "$@"; shift ${#STEP_ARGS[@]}
                     start_video_train "$minutes" "${STEP_ARGS[@]}" || exit 1 ;;
        probe) minutes=$1; shift; step_args "$@"; shift ${#STEP_ARGS[@]}
               start_probe "$minutes" "${STEP_ARGS[@]}" || exit 1 ;;
        video-bench) step_args "$@"; shift ${#STEP_ARGS[@]}; do_video_bench "${STEP_ARGS[@]}" ;;
        stop) stop_run "$1"; shift ;;
        wait) end=$(( $(date +%s) + $1 )); shift
              while [ "$(date +%s)" -lt "$end" ]; do sleep $(( end - $(date +%s) < 60 ? end - $(date +%s) : 60 )); do_status | tail -n 12; done ;;
        until) end=$(( $(date +%s) + $1 - SECONDS )); shift
               while [ "$(date +%s)" -lt "$end" ]; do sleep $(( end - $(date +%s) < 60 ? end - $(date +%s) : 60 )); do_status | tail -n 12; done ;;
        waitfor) step_args "$@"; shift ${#STEP_ARGS[@]}; names=("${STEP_ARGS[@]}")
                 end=$(( $(date +%s) + ${names[-1]} )); unset 'names[-1]' 
                 for n in "${names[@]}"; do pid=$(cat "$RUNS/$n.pid" 2>/dev/null) || continue
                     while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
                     say "$n: $(kill -0 "$pid" 2>/dev/null && echo still running || echo ended)"; done ;;
        status) do_status ;;
        collect) do_collect ;;
        +) ;;  # separator
        *) say "unknown step $step"; exit 2 ;;
    esac
done
