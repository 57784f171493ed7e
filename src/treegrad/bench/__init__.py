"""The benchmark behind `treegrad bench`: treegrad's training speed beside its peers.

This package is library code, and nothing in treegrad imports it but the `bench` command
(its one argument parser): `workloads` (the recipe: sizes, seeds, data and initial values),
`by_hand` (the peers written out by hand: Python and NumPy), `peers` (treegrad, micrograd,
PyTorch, and which of them can run here), `startup` (the CLI row: a first call in a fresh
process), `measuring` (what runs, how long it takes) and `report` (the table). A new workload
is a name in `workloads.WORKLOADS`, its model in `peers._treegrad` and each peer's function,
and its data in `workloads.setup`.

Every peer trains the same models on the same 1000 samples from the same initial
parameters, with the same loss (binary cross-entropy, p clamped to [1e-8, 1 - 1e-8]),
learning rate 0.01, plain SGD and no shuffling; one run prints one table of steps/s and
samples/s, and how many times faster treegrad is than each peer.

Workloads (a step is forward + backward + update):
  W1   sigmoid(p1*relu(p2*x + p3*y + p4) + p5), per sample, 20 epochs
  W2a  MLP 2-16-16-1, relu hidden, sigmoid out, per sample, 5 epochs
  W2b  the same MLP in mini-batches of 32 (the last one has 8), 50 epochs; the gradient of
       a batch is the MEAN of its samples' gradients (fit's contract; every peer here does
       the same, so the losses are comparable)
  W3   a chain v_k = sigmoid(a_k*v_(k-1) + b_k), v_0 = x, per sample, 1 epoch, at depths
       2, 4, ..., 4096; the log-log slope of time per step against depth says how the cost grows
  W4s  MLP 64-32-10 with a softmax (digits-shaped: 1797 rows of 64 inputs, 10 classes), per-sample SGD
  W4a  the same in batches of 32 with Adam (learning rate 0.001)
  W5   a wide MLP 8-256-1 (mse, 4096 rows) in batches of 64
  W6   64-h-10 as W4a for widths h = 8 .. 256, with the log-log slope of time per sample against h
       (W4-W6: relu hidden layers, the MEAN batch loss, data from random.Random(3): x uniform on
       [0, 1), the class a random linear teacher picks (or sin of a random projection for W5);
       weights uniform on +-1/sqrt(inputs), biases 0; peers treegrad, numpy, torch)
  CLI  a first call: `treegrad train` of a line fit c = w*f + b (mse, 100 rows of the f2c
       conversion from a CSV, per-sample SGD, 100 epochs) in a fresh process, start-up included,
       beside the same training written out in a fresh `python`; the table says how much of
       each process's time went to imports (-X importtime)

Data: 1000 points (x, y) uniform on [-1, 1]^2 from random.Random(0), label 1 if y > x, drawn
after W1's five parameters from the same generator; MLP weights uniform on [-1, 1] from
random.Random(1), layer by layer, neuron by neuron, biases 0; chain (a_k, b_k) uniform on
[-1, 1] from random.Random(2), innermost first. W3 uses the first coordinate only.

Peers, each optional except the first two:
  python     written out by hand below: floats and lists, straight-line, no graph
  numpy      by hand, forward and backward as matmuls (W2a, W2b)
  micrograd  if importable (W1, W2a, W3 up to depth 256: its recursive sort fails beyond ~300)
  torch      if importable (W1, W2a, W2b, W4-W6), float64, CPU, its default threads
  torch1     the same with torch.set_num_threads(1) while it trains (restored afterwards): on a
             busy machine a small model's threads cost more than they give
  treegrad32 treegrad with training.dtype float32 (W4-W6, on NumPy arrays in single precision)

A measurement repeats a whole training (from building the model to the last update) until
one second has passed and reports the time of one. `--reps N` interleaves N rounds of all
measurements and reports medians. W1 and W3 do the same float operations in the same
order in treegrad and in the python peer, so their losses are equal to the last bit.
"""
