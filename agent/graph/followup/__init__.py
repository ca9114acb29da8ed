"""What happens to an incident after its run: repeat notices, resolution, failback.

A graph of its own (`build_followup_graph`), compiled with the main graph's checkpointer; each
follow-up runs on a thread of its own (see `thread_id`), so a retried step continues after its
last checkpoint instead of repeating what it already did.
"""
