from lmlang.lsp import serve

serve()
