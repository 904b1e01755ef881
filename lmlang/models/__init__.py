"""Language models: which GGUF file a name means (:mod:`lmlang.models.registry`, light, no llama.cpp) and the
llama.cpp backend that runs it (:mod:`lmlang.models.llama`: ``load``, ``Model``, ``Sequence``)."""
