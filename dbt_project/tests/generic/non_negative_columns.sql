{#-
  Counts that must not be below zero, several columns in one query (missing values pass:
  empty is not zero, and NULL marks a month a publisher has not published).
-#}
{% test non_negative_columns(model, columns) %}
select {{ columns | join(', ') }}
from {{ model }}
where {% for column in columns %}{{ column }} < 0{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
