-- HHS's monthly "Latest UC Data" pages, one row per figure (month x section x label), as the
-- newest fetch of the page carrying the month published it.

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'hhs_uc_monthly'), 'month') }}

),

renamed as (

    select
        cast(fiscal_year as integer) as fiscal_year,
        cast(month as date) as month,
        section,
        category,
        measure,
        cast(value as double) as value,
        number_type,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_month
    from newest

)

select * from renamed
