# The README's two commands: `make train` (set up, then train the default agent) and `make test`
# (set up, then run the test suite). Both need only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The main job: 100k environment steps of cartpole-swingup at action repeat 8 (12,500 agent steps),
# the setting of benchmarks/learning_kl_svg0.py (median evaluation return 846 over 3 seeds).
STEPS ?= 12500
ACTION_REPEAT ?= 8
RUN_DIR ?= runs/cartpole_swingup

.PHONY: setup train test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when the pins or setup.py change (the stamp file is newer than both otherwise).
$(VENV)/.installed: $(BIN)/python constraints.txt setup.py
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	$(BIN)/pip check
	touch $@

setup: $(VENV)/.installed

train: setup
	$(BIN)/priorax train --agent kl_svg0 --env dmc:cartpole-swingup --steps $(STEPS) --action-repeat $(ACTION_REPEAT) --eval-every 1250 --seed 0 --run-dir $(RUN_DIR)

test: setup
	MUJOCO_GL=egl $(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) *.egg-info
