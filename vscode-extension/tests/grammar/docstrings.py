# SYNTAX TEST "source.python" "lmql docstrings inside Python files"
import lmql
# <------ keyword.control.import.python
@lmql.query
#^^^^ entity.name.function.decorator.python
def capital(country):
#   ^^^^^^^ entity.name.function.python
    '''lmql
#   ^^^ punctuation.definition.string.begin.lmlang
#      ^^^^ storage.type.query-tag.lmlang
    argmax
#   ^^^^^^ meta.embedded.query.lmlang keyword.control.decoder.lmlang
        "{:user}Capital of {country}? [[short]] [CITY]" where STOPS_AT(CITY, ".")
#       ^ meta.embedded.query.lmlang string.quoted.single.query.lmlang punctuation.definition.string.begin.lmlang
#          ^^^^ entity.name.tag.role.lmlang
#                          ^ punctuation.section.interpolation.begin.lmlang
#                           ^^^^^^^ meta.embedded.python.lmlang
#                                     ^^ constant.character.escape.bracket.lmlang
#                                                ^^^^ variable.other.hole.lmlang
#                                                       ^^^^^ keyword.control.where.lmlang
#                                                             ^^^^^^^^ support.function.constraint.lmlang
    from "smollm2"
#   ^^^^ keyword.control.from.lmlang
#         ^^^^^^^ string.quoted.model.lmlang
    distribution CITY in ["Paris", "Rome"]
#   ^^^^^^^^^^^^ keyword.control.distribution.lmlang
#                ^^^^ variable.other.hole.lmlang
    return CITY
#   ^^^^^^ meta.embedded.query.lmlang keyword.control.flow.python
    '''
#   ^^^ punctuation.definition.string.end.lmlang
def plain():
#   ^^^^^ entity.name.function.python
    """An ordinary docstring with [BRACKETS]."""
#   ^^^ string.quoted.docstring.multi.python punctuation.definition.string.begin.python
#                                  ^^^^^^^^ string.quoted.docstring.multi.python
#                                  ^^^^^^^^ - variable.other.hole.lmlang
query = """lmql
#       ^^^ punctuation.definition.string.begin.lmlang
#          ^^^^ storage.type.query-tag.lmlang
"Say [X]" where INT(X)
#     ^ meta.embedded.query.lmlang variable.other.hole.lmlang
#               ^^^ support.function.constraint.lmlang
"""
# <--- punctuation.definition.string.end.lmlang
x = "where [X]"
#    ^^^^^ string.quoted.single.python
#    ^^^^^ - keyword.control.where.lmlang
