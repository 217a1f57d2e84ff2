"""The form fields of each training stage: names, types, defaults and help (no heavy imports).

``registry.validate`` checks a config against these lists; the Training tab builds its forms
from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from backend.engines.registry import stage_kinds

FieldType = Literal["int", "float", "str", "bool", "choice", "model", "dataset", "job",
                    "reward_models"]
DatasetKind = Literal["pair", "sl_cai", "preference"]
Group = Literal["stage", "training", "device"]


@dataclass(frozen=True)
class FieldSpec:
    """One config field. ``dataset_kind`` says which table a ``dataset`` field refers to
    (``pair``: an imported human-labelled pair dataset; ``sl_cai`` / ``preference``: a
    dataset made by an earlier stage). ``minimum`` bounds numbers (inclusive)."""

    name: str
    type: FieldType
    default: object
    help: str
    choices: tuple[object, ...] = ()
    required: bool = False
    dataset_kind: DatasetKind | None = None
    minimum: float | None = None
    maximum: float | None = None
    group: Group = "stage"


@dataclass(frozen=True)
class StageInfo:
    """One stage: the one place its kind is listed. ``module`` is the module whose
    ``run(ctx)`` the entry point calls; ``upstream`` the stage whose newest model a new job's
    ``model`` field starts from (the chain of the paper; None: no such default)."""

    kind: str
    title: str
    description: str
    fields: list[FieldSpec] = field(default_factory=list)
    model_stage: bool = True  # trains a model (HF Trainer checkpoints, output/)
    policy: bool = False  # its model is a policy (a causal LM that answers prompts)
    module: str = ""
    upstream: str | None = None


def _int(name: str, default: int | None, help: str, *, minimum: float | None = 1,
         maximum: float | None = None, group: Group = "stage") -> FieldSpec:
    return FieldSpec(name, "int", default, help, minimum=minimum, maximum=maximum, group=group)


def _float(name: str, default: float, help: str, *, minimum: float | None = 0.0,
           maximum: float | None = None, group: Group = "stage") -> FieldSpec:
    return FieldSpec(name, "float", default, help, minimum=minimum, maximum=maximum,
                     group=group)


DEVICE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("device", "str", "auto", "auto, cpu, cuda or cuda:N (a GPU that exists).",
              group="device"),
    FieldSpec("mixed_precision", "choice", "no", "Mixed precision (bf16 needs a recent GPU).",
              choices=("no", "bf16", "fp16"), group="device"),
    _int("num_processes", 1, "Processes (GPUs) per node.", group="device"),
    FieldSpec("deepspeed_stage", "choice", None, "DeepSpeed ZeRO stage (empty: no DeepSpeed).",
              choices=(None, 1, 2, 3), group="device"),
    _int("num_nodes", 1, "Machines taking part.", group="device"),
    _int("node_rank", 0, "This machine's rank (0 = main).", minimum=0, group="device"),
    FieldSpec("main_process_ip", "str", "", "Address of the rank-0 machine (multi-node only).",
              group="device"),
    _int("main_process_port", 29500, "Port on the rank-0 machine.", maximum=65535,
         group="device"),
)

SEED = _int("seed", 0, "Seed for sampling, shuffling and initialisation.", minimum=0)
CONSTITUTION = FieldSpec(
    "constitution_version_id", "int", None,
    "Constitution version whose principles are used (empty: the head of the first "
    "constitution).", minimum=1)
PROMPT_SET = FieldSpec("prompt_set", "str", "default",
                       "'default' (the built-in set: red-team and helpful prompts) or the id "
                       "of an imported prompt set (`cstudio prompts list`).")


def _model(default: str, help: str) -> FieldSpec:
    return FieldSpec("model", "model", default, help + " A Hub id, a local path, 'tiny' (the "
                     "offline demo model, random weights), 'smollm2' (the bundled "
                     "SmolLM2-135M-Instruct), a .gguf file or 'job:<id>' (an earlier job's "
                     "output).", required=True)


TRAINING_FIELDS: tuple[FieldSpec, ...] = (
    _int("max_steps", 100, "Optimizer steps.", group="training"),
    _float("learning_rate", 1e-5, "Peak learning rate.", minimum=1e-12, group="training"),
    _int("batch_size", 4, "Examples per device per step.", group="training"),
    _int("gradient_accumulation_steps", 1, "Steps to accumulate before an update.",
         group="training"),
    _int("save_steps", 50, "Save a checkpoint every N steps (resume continues from the last).",
         group="training"),
    _int("max_length", 512, "Longest sequence in tokens (longer ones are truncated).",
         minimum=8, group="training"),
    FieldSpec("lora", "bool", False, "Train LoRA adapters (peft) instead of all weights.",
              group="training"),
    _int("lora_r", 16, "LoRA rank.", group="training"),
    _int("lora_alpha", 32, "LoRA alpha.", group="training"),
    FieldSpec("gradient_checkpointing", "bool", True, "Recompute activations during the "
              "backward pass (TRL's default): less memory for about a third more compute. "
              "Turn it off where memory allows (a CPU, a small model). The compact PPO never "
              "checkpoints.", group="training"),
    FieldSpec("report_to", "choice", "tensorboard", "Experiment tracking: TensorBoard logs in "
              "the job folder (tensorboard/), trackio (local, in the job folder's trackio/) "
              "or none.", choices=("tensorboard", "trackio", "none"), group="training"),
)

SAMPLING_FIELDS: tuple[FieldSpec, ...] = (
    _int("max_prompts", 100, "How many prompts of the set to use."),
    _int("max_new_tokens", 128, "Longest generated text per step, in tokens."),
    _float("temperature", 0.0, "Sampling temperature (0: greedy)."),
    _int("chunk_size", 16, "Prompts per batch; each finished batch is stored (resume point)."),
    FieldSpec("form", "choice", "chat", "Prompt layout: chat messages or the paper's raw text.",
              choices=("chat", "raw")),
)

ENGINE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("engine", "choice", "local", "local: load the model in this process; "
              "openai_compat: call a vLLM/OpenAI-compatible server at base_url.",
              choices=stage_kinds()),
    FieldSpec("base_url", "str", "", "Server URL for engine=openai_compat."),
)

SL_CAI_DATA_FIELDS: tuple[FieldSpec, ...] = (
    _model("tiny", "Model that answers, critiques and revises."),
    *ENGINE_FIELDS, CONSTITUTION, PROMPT_SET, *SAMPLING_FIELDS,
    _int("rounds", 4, "Critique→revision rounds per prompt (the paper: 4).", maximum=16),
    FieldSpec("use_few_shots", "bool", True, "Put the constitution's few-shot examples in front "
              "of critique prompts."),
)

SFT_FIELDS: tuple[FieldSpec, ...] = (
    _model("tiny", "Model to fine-tune (usually the helpful model that produced the data)."),
    FieldSpec("sl_cai_dataset_id", "dataset", None, "SL-CAI dataset to train on.",
              required=True, dataset_kind="sl_cai"),
    FieldSpec("helpful_dataset_id", "dataset", None, "Optional human pair dataset whose "
              "preferred responses are mixed in as helpfulness data.", dataset_kind="pair"),
    _int("helpful_samples", 0, "How many helpfulness samples to mix in (0: none).", minimum=0),
)

PREFERENCE_DATA_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("source", "choice", "labeller", "labeller: the policy writes two responses per "
              "prompt and the CAI labeller gives p(A better) (the paper); revisions: each "
              "sample of an SL-CAI dataset gives its final revision preferred over its first "
              "response (p = 1, no model calls).", choices=("labeller", "revisions")),
    FieldSpec("sl_cai_dataset_id", "dataset", None, "SL-CAI dataset whose (revision, first "
              "response) pairs are used when source is revisions.", dataset_kind="sl_cai"),
    _model("tiny", "Policy that writes the two responses (e.g. the SL-CAI model)."),
    FieldSpec("labeler_model", "model", "", "Feedback model that labels the pairs "
              "(empty: the policy itself)."),
    CONSTITUTION, PROMPT_SET,
    *(f if f.name != "temperature" else _float("temperature", 1.0, "Sampling temperature of "
      "the two responses (> 0 so they differ).", minimum=0.01) for f in SAMPLING_FIELDS),
    FieldSpec("cot", "bool", False, "Chain-of-thought before the A/B probability."),
    FieldSpec("cot_clamp", "bool", True, "Clamp CoT labels to 40–60 % (the paper)."),
    FieldSpec("both_orders", "bool", True, "Score (A,B) and (B,A) and average."),
    _int("k_principles", 1, "Principles sampled per pair and averaged.", maximum=64),
    FieldSpec("use_label_few_shots", "bool", True, "Put the constitution's labelling examples "
              "(choice / choice_cot) in front of each A/B question."),
)

REWARD_FIELDS: tuple[FieldSpec, ...] = (
    _model("tiny", "Backbone (a sequence-classification head with one output is added)."),
    FieldSpec("label_source", "choice", "ai", "Train on AI labels, human labels, or both.",
              choices=("ai", "human", "mix")),
    FieldSpec("preference_dataset_id", "dataset", None, "AI-labelled pairs (from the "
              "preference-data stage).", dataset_kind="preference"),
    FieldSpec("pair_dataset_id", "dataset", None, "Human-labelled pairs: training data for "
              "label_source human/mix, and the held-out accuracy set.", dataset_kind="pair"),
    _int("eval_pairs", 200, "Human pairs held out for accuracy (0: none).", minimum=0),
    _int("max_train_pairs", 0, "Cap on human training pairs (0: all not held out).", minimum=0),
    _int("eval_steps", 0, "Evaluate held-out accuracy every N steps (0: at the end only).",
         minimum=0),
    FieldSpec("reward_pooling", "choice", "auto", "How the tokens become one reward: head (the "
              "model's own classification head, e.g. BERT's [CLS]), mean (mean of the tokens; "
              "BERT-like encoders) or auto (mean for a sentence-transformers backbone, which is "
              "trained that way, else head). Saved with the model.",
              choices=("auto", "head", "mean")),
    _int("trainable_layers", 0, "Train only the top N transformer blocks (and the head); "
         "the embeddings and lower blocks stay frozen (0: every weight). About halves a CPU "
         "step at 8 of SmolLM2's 30 blocks. Not with LoRA.", minimum=0, group="training"),
)

RL_FIELDS: tuple[FieldSpec, ...] = (
    _model("tiny", "Policy to start from (the SL-CAI model); also the KL reference."),
    FieldSpec("reward_models", "reward_models", [], "Reward models and weights, e.g. "
              "'job:3=1.0, job:5=0.5' (a model ref = weight each).", required=True),
    FieldSpec("algorithm", "choice", "grpo", "grpo and rloo: TRL trainers; ppo: clipped "
              "policy and value losses, GAE, per-token KL penalty.",
              choices=("grpo", "rloo", "ppo")),
    PROMPT_SET, _int("max_prompts", 100, "How many prompts of the set to use."),
    _float("beta", 0.05, "KL coefficient β (initial value for the adaptive PPO controller)."),
    _int("num_generations", 4, "Completions per prompt (GRPO/RLOO groups; PPO: 1 each).",
         minimum=2),
    _int("max_completion_length", 64, "Longest completion in tokens."),
    _float("temperature", 1.0, "Sampling temperature.", minimum=0.01),
    FieldSpec("kl_target", "float", None, "PPO: target KL for the adaptive β controller "
              "(empty: fixed β).", minimum=0.0),
    _int("kl_horizon", 256, "PPO: horizon of the adaptive β controller, in rollouts (β "
         "changes by at most e^0.2 over this many).", minimum=1),
    _int("log_rollouts", 8, "Rollouts per batch written to the critique log with their "
         "reward (0: none).", minimum=0),
    _int("ppo_epochs", 2, "PPO: optimisation epochs per batch of rollouts."),
    _float("cliprange", 0.2, "PPO: policy ratio clip range."),
    _float("cliprange_value", 0.2, "PPO: value clip range."),
    _float("vf_coef", 0.1, "PPO: value loss coefficient."),
    _float("gamma", 1.0, "PPO: discount.", maximum=1.0),
    _float("lam", 0.95, "PPO: GAE λ.", maximum=1.0),
    FieldSpec("use_vllm", "bool", False, "GRPO/RLOO: generate the rollouts with vLLM (TRL's "
              "integration; needs the gpu extra)."),
    FieldSpec("vllm_mode", "choice", "server", "GRPO/RLOO with vLLM: server (a `trl "
              "vllm-serve` process at vllm_server_base_url, its own GPUs) or colocate (vLLM "
              "inside each training process).", choices=("server", "colocate")),
    FieldSpec("vllm_server_base_url", "str", "", "GRPO/RLOO, vllm_mode server: the `trl "
              "vllm-serve` URL, e.g. http://gpu-host:8000."),
    _float("vllm_gpu_memory_utilization", 0.3, "GRPO/RLOO, vllm_mode colocate: share of each "
           "GPU vLLM may take.", minimum=0.05, maximum=0.95),
)

DPO_FIELDS: tuple[FieldSpec, ...] = (
    _model("tiny", "Policy to train (the SL-CAI model); also the reference."),
    FieldSpec("preference_dataset_id", "dataset", None, "AI-labelled pairs.", required=True,
              dataset_kind="preference"),
    _float("beta", 0.1, "DPO β.", minimum=1e-6),
    _float("min_confidence", 0.0, "Skip pairs whose |p − 0.5| is below this.", maximum=0.5),
)


def _data_stage(kind: str, title: str, description: str, fields: tuple[FieldSpec, ...], *,
                upstream: str | None = None) -> StageInfo:
    """A stage that writes a dataset (runs on the main process only; no model output)."""
    return StageInfo(kind, title, description, [*fields, SEED, *DEVICE_FIELDS],
                     model_stage=False, module=f"backend.training.{kind}", upstream=upstream)


def _model_stage(kind: str, title: str, description: str, fields: tuple[FieldSpec, ...], *,
                 upstream: str | None = None, policy: bool = True) -> StageInfo:
    """A stage that trains a model (HF Trainer checkpoints, output/)."""
    return StageInfo(kind, title, description, [*fields, SEED, *TRAINING_FIELDS, *DEVICE_FIELDS],
                     model_stage=True, module=f"backend.training.{kind}", upstream=upstream,
                     policy=policy)


# The one list of stages: the registry validates with it, the entry point runs its modules,
# the Training tab builds its forms and model defaults from it (tests/backend/training/
# test_stage_kinds.py fails when a kind is missing anywhere).
STAGES: tuple[StageInfo, ...] = (
    _data_stage("sl_cai_data", "SL-CAI data",
                "Critique → revision loop over a prompt set; stores (prompt, final revision) "
                "samples linked to every critique and principle in the critique log.",
                SL_CAI_DATA_FIELDS),
    _model_stage("sft", "SL-CAI SFT",
                 "Supervised fine-tuning (TRL SFTTrainer) on (prompt, final revision), "
                 "optionally mixed with helpful responses (the chosen side of a human pair "
                 "dataset).", SFT_FIELDS),
    _data_stage("preference_data", "AI preference data",
                "Samples two responses per prompt from a policy and labels them with the CAI "
                "labeller (soft labels); stores the pairs linked to their verdict records.",
                PREFERENCE_DATA_FIELDS, upstream="sft"),
    _model_stage("reward", "Reward model",
                 "TRL RewardTrainer with the soft-label Bradley–Terry loss "
                 "-(p·logσ(Δ) + (1-p)·logσ(-Δ)); AI labels, human labels or both; reports "
                 "held-out accuracy against human labels.", REWARD_FIELDS, policy=False),
    _model_stage("rl", "RL (GRPO / RLOO / PPO)",
                 "From the SL-CAI model, maximise reward − β·KL to it; reward = weighted sum of "
                 "reward models. TRL GRPO and RLOO, or a compact PPO with a value head.",
                 RL_FIELDS, upstream="sft"),
    _model_stage("dpo", "DPO",
                 "TRL DPOTrainer on the AI preference pairs (the side with p > 0.5 is chosen).",
                 DPO_FIELDS, upstream="sft"),
)
