# csood: build the book and run the tests. See README.md.
#   make book                    install (first time), execute every chapter, build the HTML
#   make test                    unit tests, source/notebook sync check, nbval on book/
#   make chapter NAME=theory PROFILE=quick ARGS="-p seed 3"
#   make html                    rebuild the HTML only (chapters already executed)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
# The CPU build of torch on machines without a GPU. Pass TORCH_PIP_ARGS (e.g. an
# --index-url of PyTorch's CPU wheels) where the default index would bring CUDA wheels.
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.csood-installed
NBVAL := --nbval --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider

.PHONY: book install execute html test unit sync nbval chapter bench clean

book: install execute html

# A venv that sees the base interpreter's packages only when that interpreter already
# has a torch (e.g. a CUDA build): then it is kept and never replaced by the CPU build.
$(STAMP): pyproject.toml constraints.txt
	@if [ ! -x $(PY) ]; then \
	  if $(PYTHON) -c 'import torch' 2>/dev/null; then flag=--system-site-packages; else flag=; fi; \
	  echo "creating $(VENV) $$flag"; $(PYTHON) -m venv $$flag $(VENV); fi
	@$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP_ARGS) '$(TORCH)'
	$(PY) -m pip install -q -c constraints.txt -e '.[book,test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@$(PY) -c 'import torch; print("torch", torch.__version__, "| CUDA available:", torch.cuda.is_available())'
	@touch $@

install: $(STAMP)

execute: install
	$(PY) -m csood run --all --profile $(PROFILE)

html: install
	$(VENV)/bin/jupyter-book build --all -W --keep-going .
	@echo "The book: $(CURDIR)/_build/html/index.html"

chapter: install
	@test -n "$(NAME)" || { echo "usage: make chapter NAME=<chapter> [PROFILE=quick|paper] [ARGS='-p seed 3']"; exit 2; }
	$(PY) -m csood run $(NAME) --profile $(PROFILE) $(ARGS)

test: unit sync nbval

unit: install
	$(PY) -m pytest tests/

sync: install
	$(PY) -m csood check

nbval: install
	$(PY) -m pytest $(NBVAL) book/

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf _build
