"""Training jobs: the queue, the worker that runs each job as a process group launched through
``accelerate launch``, its logs and metrics, heartbeat, cancel and resume.

The job directory contract shared with the stages is docs/training-contract.md.
"""
