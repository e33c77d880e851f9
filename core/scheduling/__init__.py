"""CPU scheduling: the simulator (simulator), and the same jobs run on the real kernel
(kernel: plans and results, kernel_run: the run, kernel_job: what each job process runs)."""
