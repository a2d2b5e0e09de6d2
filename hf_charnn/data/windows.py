"""Training windows of an LM: fixed-length pieces of an id array, cut when a batch asks for them (TBPTT streams)."""

import math

import numpy as np
import torch

from ..errors import DataError, UserError


class LMWindows(torch.utils.data.Dataset):
    """
    Training windows of `chunk_size` characters (`input_ids`) and the character after each (`shift_labels`), cut
    from an id array (in memory or memory-mapped) when a batch asks for them.

    With `carry_state`, the text is split into `num_streams` equal contiguous streams (the batch size); row
    `k * num_streams + s` is window k of stream s, so an unshuffled loader with batch size `num_streams` feeds each
    stream's windows in order and the GRU state after one batch is the right start for the next (truncated BPTT);
    under several processes each takes its share of the streams. The last window of each stream may be shorter.
    Without `carry_state` every window is `chunk_size` long (batches are shuffled): the last one reaches back over
    the one before, with the overlap masked out of its targets, so each target still counts once.
    `masked_spans`: (start, end) character spans that are never targets (-100).
    """

    def __init__(
        self, ids: np.ndarray, chunk_size: int, num_streams: int = 1, carry_state: bool = True, masked_spans=()
    ):
        if chunk_size < 1 or num_streams < 1:
            raise UserError("chunk_size and the number of streams (batch size) must be at least 1")
        self.ids = np.asarray(ids)  # a plain view of a memory map: its slices cost half as much as memmap slices
        self.chunk_size = chunk_size
        self.carry_state = carry_state
        self.num_streams = num_streams if carry_state else 1
        self.stream_length = (len(ids) - 1) // self.num_streams
        if self.stream_length < 1:
            raise DataError(f"text of {len(ids)} characters is too short for {self.num_streams} streams")
        self.windows_per_stream = math.ceil(self.stream_length / chunk_size)
        self.target_mask = None
        if masked_spans:
            self.target_mask = np.zeros(len(ids), dtype=bool)
            for start, end in masked_spans:
                self.target_mask[start:end] = True

    def __len__(self) -> int:
        return self.windows_per_stream * self.num_streams

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        window, stream = divmod(index, self.num_streams)
        offset = stream * self.stream_length
        begin = offset + window * self.chunk_size
        end = offset + min((window + 1) * self.chunk_size, self.stream_length)
        labels = self.ids[begin + 1 : end + 1].astype(np.int64)
        if self.target_mask is not None:
            labels[self.target_mask[begin + 1 : end + 1]] = -100
        if not self.carry_state and end - begin < self.chunk_size <= self.stream_length:
            taught = end - begin
            begin = end - self.chunk_size
            labels = np.concatenate([np.full(self.chunk_size - taught, -100, dtype=np.int64), labels])
        input_ids = torch.from_numpy(self.ids[begin:end].astype(np.int64))
        return {"input_ids": input_ids, "shift_labels": torch.from_numpy(labels)}

    def __getitems__(self, indices: list[int]) -> list[dict]:
        # The DataLoader's batched fetch: one call per batch instead of one per row.
        return [self[index] for index in indices]
