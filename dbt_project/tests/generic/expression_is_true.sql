{#-
  Rows where a boolean SQL expression is false fail the test; rows where it is null pass
  (a missing figure is reported by other tests, not by this one).
  Written here because dbt packages (dbt_utils) cannot be installed offline.
-#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
